"""A quarter's publication: the vintage committed in the warehouse and its files written, under
the period's warehouse lock so that a load or another publication of the period waits."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from publishing.vintage import Publication, write_vintage_files
from transforms.indicators import indicators
from tthc.periods import Period
from warehouse.db import warehouse_lock
from warehouse.publish import commit_vintage, form_rows, report_inputs, vintage_tables


def publish_period(engine: sa.Engine, period: Period, run_id: str, publish_root: Path,
                   sources: dict[str, str] | None = None, note: str | None = None,
                   publication: Publication | None = None) -> dict:
    """A new vintage when the figures changed (`sources`: a checksum of each source's landed
    data, `note`: the operator's reason), and the files of the newest vintage under
    `publish_root/<period>/v<vintage>/` unless they are already there. With no unit that may be
    published, neither: `vintage` and `folder` are None."""
    publication = publication or Publication("", "", {})
    with warehouse_lock(engine, period.label, f"publish {run_id}"):
        result = commit_vintage(engine, period, run_id, indicators=indicators,
                                province_code=publication.province_code, sources=sources, note=note)
        if result["vintage"] is None:  # nothing may be published: no vintage, no files
            return {**result, "folder": None}
        folder = publish_root / period.label / f"v{result['vintage']}"
        if not folder.exists():
            with engine.connect() as conn:
                tables = vintage_tables(conn, period, result["vintage"], publication.field_names)
                form = form_rows(conn, period, publication.field_names)
                inputs = report_inputs(conn, period)
            write_vintage_files(folder, period, result["vintage"], tables, form, inputs, publication)
    return {"vintage": result["vintage"], "new_vintage": result["new_vintage"], "units": result["units"],
            "folder": str(folder), "content_sha256": result["content_sha256"], "reason": result["reason"]}
