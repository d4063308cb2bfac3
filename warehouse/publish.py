"""Publishing: the Biểu 06 figures of a period become a numbered vintage, in the warehouse
(`publish` views) and as files under var/publish/<period>/v<vintage>/.

A vintage is created only when the unit-level figures differ from the newest one, so rerunning
an unchanged quarter publishes nothing new. The files of a vintage are written to a staging
folder and appear with one rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tthc.form import FIGURES
from tthc.form import PUBLISHED_STATUSES, quarter_label
from tthc.periods import Period
from transforms.indicators import INDICATOR_COLUMNS, indicators, record_counts_sql, split_record_counts
from warehouse.db import bulk_insert, warehouse_lock

UNIT_COLUMNS = ["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage", "quality_status",
                "source_id", "basis", *FIGURES]
ROLLUP_COLUMNS = ["parent_code", "parent_level", "period_start", "period_end", "vintage", "field_code", *FIGURES,
                  "units_included", "units_not_published", "duplicates_removed"]


@dataclass(frozen=True)
class Publication:
    """What the files of a vintage are made for: the province and its fields."""

    province_code: str
    province_name: str
    field_names: dict[str, str]


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("period_start", "period_end"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def _figures(frame: pd.DataFrame) -> pd.DataFrame:
    for f in FIGURES:
        if f in frame:
            frame[f] = frame[f].astype("Int64")
    return frame


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
    return _figures(_dates(pd.read_sql(sa.text(sql), conn, params={"start": period.start, "end": period.end})))


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


def _period_params(period: Period) -> dict:
    return {"start": period.start, "end": period.end, "first": datetime.combine(period.start, datetime.min.time()),
            "after": datetime.combine(period.end + timedelta(days=1), datetime.min.time())}


def _freeze_rollup_and_indicators(conn: sa.Connection, period: Period, vintage: int, units: pd.DataFrame,
                                  province_code: str) -> None:
    params = _period_params(period)
    rollup = pd.read_sql(sa.text(
        "SELECT * FROM core.bieu06_rollup WHERE period_start = :start AND period_end = :end"), conn, params=params)
    rollup = _figures(_dates(rollup)).assign(vintage=vintage)
    bulk_insert(conn, "core.published_rollup", pa.Table.from_pandas(rollup[ROLLUP_COLUMNS], preserve_index=False))
    province_rows = rollup[rollup["parent_level"] == "province"]
    province = {"province_code": province_code, **{f: province_rows[f].sum(min_count=1) for f in FIGURES}}
    # counted per unit in one aggregation; the province's counts are their sum (one row per dossier)
    unit_counts, province_counts = split_record_counts(
        pd.read_sql(sa.text(record_counts_sql()), conn, params=params))
    table = indicators(units, unit_counts, province, province_counts)
    table = table.assign(period_start=period.start, period_end=period.end, vintage=vintage)
    bulk_insert(conn, "core.published_indicators", pa.Table.from_pandas(table, preserve_index=False))


def publish_period(engine: sa.Engine, period: Period, run_id: str, publish_root: Path,
                   sources: dict[str, str] | None = None, note: str | None = None,
                   publication: Publication | None = None) -> dict:
    """`sources`: a checksum of each source's landed data for the period, kept with the vintage
    so that the next one can say which sources changed; `note`: the operator's reason.
    Publications and loads of one period wait for each other (`warehouse_lock`)."""
    with warehouse_lock(engine, period.label, f"publish {run_id}"):
        return _publish_period(engine, period, run_id, publish_root, sources, note, publication)


def _publish_period(engine: sa.Engine, period: Period, run_id: str, publish_root: Path,
                    sources: dict[str, str] | None, note: str | None, publication: Publication | None) -> dict:
    sources = sources or {}
    publication = publication or Publication("", "", {})
    reason = None
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
            _freeze_rollup_and_indicators(conn, period, vintage, frame, publication.province_code)
            conn.execute(sa.text(
                "INSERT INTO publish.vintages (period_start, period_end, vintage, content_sha256, published_at, run_id,"
                " units, reason, sources) VALUES (:s, :e, :v, :h, :at, :run, :n, :reason, :sources)"),
                {"s": period.start, "e": period.end, "v": vintage, "h": digest,
                 "at": datetime.now(timezone.utc).replace(tzinfo=None), "run": run_id, "n": len(frame),
                 "reason": reason, "sources": json.dumps(sources, sort_keys=True)}).close()
    folder = publish_root / period.label / f"v{vintage}"
    if not folder.exists():
        with engine.connect() as conn:
            write_vintage_files(conn, period, vintage, folder, publication)
    return {"vintage": vintage, "new_vintage": created, "units": len(frame), "folder": str(folder),
            "content_sha256": digest, "reason": reason}


def vintage_tables(conn: sa.Connection, period: Period, vintage: int, field_names: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Every publish view's rows for one vintage of a period, as the files carry them."""
    params = {"start": period.start, "end": period.end, "v": vintage}
    where = "period_start = :start AND period_end = :end AND vintage = :v"
    by_unit = pd.read_sql(sa.text(
        f"SELECT {', '.join(UNIT_COLUMNS)} FROM core.published_bieu06_by_unit WHERE {where} ORDER BY unit_code"),
        conn, params=params)
    rollup = pd.read_sql(sa.text(
        f"SELECT * FROM core.published_rollup WHERE {where} AND parent_level = 'province' ORDER BY field_code"),
        conn, params=params)
    sums = rollup.groupby(["parent_code", "period_start", "period_end", "vintage"], as_index=False).agg(
        **{f: (f, "sum") for f in FIGURES}, units_included=("units_included", "max"),
        units_not_published=("units_not_published", "max"), duplicates_removed=("duplicates_removed", "max"))
    by_province = sums.rename(columns={"parent_code": "province_code"})
    by_field = rollup[["field_code", "period_start", "period_end", "vintage", *FIGURES]].copy()
    by_field.insert(1, "field_name", by_field["field_code"].map(field_names))
    indicators_766 = pd.read_sql(sa.text(
        f"SELECT unit_code, unit_level, period_start, period_end, vintage, "
        f"{', '.join(c for c in INDICATOR_COLUMNS if c not in ('unit_code', 'unit_level'))} "
        f"FROM core.published_indicators WHERE {where} ORDER BY unit_level, unit_code, indicator"),
        conn, params=params)
    units = by_unit[["unit_code", "unit_name", "unit_level"]].copy()
    for code in sorted(set(indicators_766["unit_code"]) - set(units["unit_code"])):
        units.loc[len(units)] = [code, None, "province"]
    tables = {"units": units, "bieu06_by_unit": by_unit, "bieu06_by_province": by_province,
              "bieu06_by_field": by_field, "indicators_766": indicators_766}
    return {name: _figures(_dates(frame)) for name, frame in tables.items()}


def form_rows(conn: sa.Connection, period: Period, field_names: dict[str, str]) -> pd.DataFrame:
    """Published figures by level and field: the rows of the province's Biểu 06 workbook."""
    sums = ", ".join(f"sum(r.{f}) AS {f}" for f in FIGURES)
    frame = pd.read_sql(sa.text(f"""
        SELECT s.unit_level, r.field_code, {sums}
        FROM core.bieu06_reconciled r
        JOIN core.unit_period_status s
          ON s.unit_code = r.unit_code AND s.source_id = r.source_id
         AND s.period_start = r.period_start AND s.period_end = r.period_end
        WHERE r.period_start = :start AND r.period_end = :end AND s.quality_status IN ('ok', 'warning')
        GROUP BY s.unit_level, r.field_code ORDER BY s.unit_level, r.field_code"""),
        conn, params={"start": period.start, "end": period.end})
    frame.insert(2, "field_name", frame["field_code"].map(field_names).fillna(frame["field_code"]))
    return _figures(frame)


def report_data(conn: sa.Connection, period: Period, vintage: int, tables: dict[str, pd.DataFrame],
                publication: Publication):
    """The analysts' report: this vintage, the trend over every quarter published, the quality section."""
    from publishing.report import ReportData

    province = tables["bieu06_by_province"]
    headline = {f: (None if province.empty or pd.isna(province[f].iloc[0]) else int(province[f].iloc[0]))
                for f in FIGURES}
    trend = pd.read_sql(sa.text(
        "SELECT period_start, period_end, received_total, resolved_total, resolved_early + resolved_on_time AS in_time "
        "FROM publish.bieu06_by_province_v1 ORDER BY period_end"), conn)
    trend["period_label"] = [quarter_label(d) for d in pd.to_datetime(trend["period_end"])]
    trend["resolved_in_time_share"] = [None if not r else i / r for i, r in zip(trend["in_time"], trend["resolved_total"])]
    params = {"start": period.start, "end": period.end}
    severities = conn.execute(sa.text(
        "SELECT severity, count(*) FROM quality.findings WHERE period_start = :start AND period_end = :end "
        "GROUP BY severity"), params).all()
    callback = pd.read_sql(sa.text("""
        SELECT f.unit_code, s.unit_name, f.check_id, f.severity, f.message, f.columns
        FROM quality.findings f
        LEFT JOIN core.unit_period_status s ON s.unit_code = f.unit_code
             AND s.period_start = f.period_start AND s.period_end = f.period_end
        WHERE f.period_start = :start AND f.period_end = :end AND f.unit_code IS NOT NULL
          AND f.severity IN ('critical', 'warning')
        ORDER BY CASE f.severity WHEN 'critical' THEN 0 ELSE 1 END, f.unit_code, f.check_id"""), conn, params=params)
    callback["columns"] = [", ".join(json.loads(c)) if c else "" for c in callback["columns"]]
    return ReportData(
        province_name=publication.province_name, period_label=period.label, period_start=period.start,
        period_end=period.end, vintage=vintage, headline=headline, units=tables["bieu06_by_unit"],
        trend=trend[["period_label", "received_total", "resolved_total", "resolved_in_time_share"]],
        findings_by_severity={severity: count for severity, count in severities}, callback_list=callback)


def write_vintage_files(conn: sa.Connection, period: Period, vintage: int, folder: Path,
                        publication: Publication) -> Path:
    from publishing.files import write_datapackage, write_sdmx_csv, write_table
    from publishing.report import write_report
    from publishing.workbook import write_bieu06_workbook

    tables = vintage_tables(conn, period, vintage, publication.field_names)
    form = form_rows(conn, period, publication.field_names)
    report = report_data(conn, period, vintage, tables, publication)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".staging-{folder.name}-*"):  # a publication killed while writing
        shutil.rmtree(stale, ignore_errors=True)  # (publish_period holds the period's warehouse lock)
    staging = folder.parent / f".staging-{folder.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, frame in tables.items():
            write_table(frame, staging, name)
        write_datapackage(staging, tables, name=f"tthc-bieu06-{publication.province_code}-{period.label.lower()}",
                          title=f"Biểu 06 {publication.province_name} {period.label}", period=period.as_dict(),
                          vintage=vintage)
        write_sdmx_csv(tables["bieu06_by_unit"], staging / "bieu06_by_unit.sdmx.csv", period.label)
        write_bieu06_workbook(staging / f"Bieu06_{publication.province_code}_{period.label}.xlsx",
                              province_name=publication.province_name, period_start=period.start,
                              period_end=period.end, period_label=period.label, rows=form, vintage=vintage)
        write_report(staging / "report.html", report)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
