"""A quarter's publication: the vintage committed in the warehouse only together with its files.

The files are written to a staging folder inside the vintage's transaction, from the rows that
transaction sees, and renamed into place once it commits: a publication that cannot write its
files commits nothing. On every publish the newest vintage's folder is checked against the
warehouse's hash of its figures and written again when it holds another warehouse's files. All
under the period's warehouse lock, so a load or another publication of the period waits."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from publishing.vintage import Publication, files_match, put_in_place, stage_vintage_files
from transforms.indicators import indicators
from tthc.periods import Period
from warehouse.db import warehouse_lock
from warehouse.publish import commit_vintage, form_rows, report_inputs, vintage_tables


def publish_period(engine: sa.Engine, period: Period, run_id: str, publish_root: Path,
                   sources: dict[str, str] | None = None, note: str | None = None,
                   publication: Publication | None = None) -> dict:
    """A new vintage when the figures changed (`sources`: a checksum of each source's landed
    data, `note`: the operator's reason), and the files of the newest vintage under
    `publish_root/<period>/v<vintage>/`. With no unit that may be published, neither: `vintage`
    and `folder` are None."""
    publication = publication or Publication("", "", {})
    staged: list[tuple[Path, Path]] = []

    def stage_files(conn: sa.Connection, result: dict) -> None:
        folder = publish_root / period.label / f"v{result['vintage']}"
        if files_match(folder, result["content_sha256"]):
            return
        tables = vintage_tables(conn, period, result["vintage"], publication.field_names)
        form = form_rows(conn, period, publication.field_names)
        staged.append((stage_vintage_files(folder, period, result["vintage"], tables, form,
                                           report_inputs(conn, period), publication, result["content_sha256"]),
                       folder))

    with warehouse_lock(engine, period.label, f"publish {run_id}"):
        result = commit_vintage(engine, period, run_id, indicators=indicators, province_code=publication.province_code,
                                sources=sources, note=note, before_commit=stage_files)
        if result["vintage"] is None:  # nothing may be published: no vintage, no files
            return {**result, "folder": None}
        for staging, folder in staged:
            put_in_place(staging, folder)
    folder = publish_root / period.label / f"v{result['vintage']}"
    return {"vintage": result["vintage"], "new_vintage": result["new_vintage"], "units": result["units"],
            "folder": str(folder), "content_sha256": result["content_sha256"], "reason": result["reason"]}
