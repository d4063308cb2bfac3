"""Publishing: the unit-level Biểu 06 figures of a period become a numbered vintage.

A vintage is created only when the figures differ from the newest one, so rerunning an
unchanged quarter publishes nothing new. Files appear with one rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from tthc.model import FIGURES
from tthc.periods import Period
from warehouse.db import bulk_insert

PUBLISHED_STATUSES = ("ok", "warning")
UNIT_COLUMNS = ["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage", "quality_status",
                "source_id", "basis", *FIGURES]


def unit_figures(conn: sa.Connection, period: Period) -> pd.DataFrame:
    """Reconciled figures summed over fields, for units whose figures may be published; a unit
    whose complete source had no dossier gets zeros, not a gap."""
    sums = ", ".join(f"coalesce(sum(r.{f}), CASE WHEN s.coverage_complete THEN 0 END) AS {f}" for f in FIGURES)
    sql = f"""
        SELECT s.unit_code, s.unit_name, s.unit_level, s.period_start, s.period_end, s.quality_status,
               s.source_id, s.basis, {sums}
        FROM core.unit_period_status s
        LEFT JOIN core.bieu06_reconciled r
          ON r.unit_code = s.unit_code AND r.period_start = s.period_start AND r.period_end = s.period_end
         AND r.source_id = s.source_id
        WHERE s.period_start = :start AND s.period_end = :end AND s.quality_status IN ('ok', 'warning')
        GROUP BY s.unit_code, s.unit_name, s.unit_level, s.period_start, s.period_end, s.quality_status,
                 s.source_id, s.basis, s.coverage_complete
        ORDER BY s.unit_code
    """
    frame = pd.read_sql(sa.text(sql), conn, params={"start": period.start, "end": period.end})
    for f in FIGURES:
        frame[f] = frame[f].astype("Int64")
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    frame["period_end"] = pd.to_datetime(frame["period_end"]).dt.date
    return frame


def content_hash(frame: pd.DataFrame) -> str:
    columns = [c for c in UNIT_COLUMNS if c != "vintage"]
    text = frame[columns].sort_values("unit_code").to_csv(index=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vintage_reason(sources: dict[str, str], previous_sources: dict[str, str] | None, note: str | None) -> str:
    """Why the figures changed: the operator's note, and which sources were re-extracted."""
    if previous_sources is None:
        automatic = "first publication of the period"
    else:
        changed = sorted(s for s in set(sources) | set(previous_sources) if sources.get(s) != previous_sources.get(s))
        automatic = ("re-extraction: " + ", ".join(changed) + " changed") if changed \
            else "same landed data; rules, configuration or reference data changed"
    return f"{note.strip()} ({automatic})" if note and note.strip() else automatic


def publish_period(engine: sa.Engine, period: Period, run_id: str, publish_root: Path,
                   sources: dict[str, str] | None = None, note: str | None = None) -> dict:
    """`sources`: a checksum of each source's landed data for the period, kept with the vintage
    so that the next one can say which sources changed; `note`: the operator's reason."""
    sources = sources or {}
    with engine.begin() as conn:
        frame = unit_figures(conn, period)
        digest = content_hash(frame)
        # .all(), not .first(): DuckDB needs every result fetched before the bulk insert
        vintages = conn.execute(sa.text(
            "SELECT vintage, content_sha256, sources FROM publish.vintages WHERE period_start = :s AND period_end = :e "
            "ORDER BY vintage DESC"), {"s": period.start, "e": period.end}).all()
        latest = vintages[0] if vintages else None
        if latest is not None and latest.content_sha256 == digest:
            vintage, created = latest.vintage, False
        else:
            vintage, created = (latest.vintage + 1 if latest else 1), True
            previous = json.loads(latest.sources) if latest is not None and latest.sources else None
            reason = vintage_reason(sources, previous if latest is not None else None, note)
            frame["vintage"] = vintage
            table = pa.Table.from_pandas(frame[UNIT_COLUMNS], preserve_index=False)
            table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
            bulk_insert(conn, "core.published_bieu06_by_unit", table)
            conn.execute(sa.text(
                "INSERT INTO publish.vintages (period_start, period_end, vintage, content_sha256, published_at, run_id,"
                " units, reason, sources) VALUES (:s, :e, :v, :h, :at, :run, :n, :reason, :sources)"),
                {"s": period.start, "e": period.end, "v": vintage, "h": digest,
                 "at": datetime.now(timezone.utc).replace(tzinfo=None), "run": run_id, "n": len(frame),
                 "reason": reason, "sources": json.dumps(sources, sort_keys=True)}).close()
    frame["vintage"] = vintage
    folder = write_files(frame[UNIT_COLUMNS], publish_root / period.label / f"v{vintage}")
    return {"vintage": vintage, "new_vintage": created, "units": len(frame), "folder": str(folder),
            "content_sha256": digest, "reason": reason if created else None}


def write_files(frame: pd.DataFrame, folder: Path) -> Path:
    """Parquet and CSV of the unit-level figures, swapped in whole."""
    if folder.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".staging-{folder.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, staging / "bieu06_by_unit.parquet")
        pacsv.write_csv(table, staging / "bieu06_by_unit.csv")
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
