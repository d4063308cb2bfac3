"""Landed raw data → the canonical model (docs/canonical-model.md).

Set-based in DuckDB so that cost stays close to reading the Parquet. Values that cannot be
read become findings that name the source, the column and example dossiers; the record is
kept with the value unknown.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from extractors.base import Manifest
from tthc.config import Settings
from tthc.findings import Finding
from tthc.model import BIEU06_COLUMNS, BIEU06_SCHEMA, DOSSIER_COLUMNS, DOSSIER_SCHEMA, FIGURES
from tthc.periods import Period

# the national-portal sync shape is a standard: its names are fixed here, not per source
PORTAL_COLUMNS = {
    "dossier_id": "MaHoSo", "procedure_code": "MaTTHC", "field_code": "MaLinhVuc", "unit_code": "MaCoQuan",
    "channel": "KenhThucHien", "received_at": "NgayTiepNhan", "due_at": "NgayHenTra",
    "finished_at": "NgayKetThucXuLy", "returned_at": "NgayTra", "status": "TrangThaiHoSo",
    "fee_amount": "PhiLePhi", "paid_online": "DuocThanhToanTrucTuyen",
    "results_digitised": "DanhSachGiayToKetQua", "updated_at": "NgayCapNhat",
}
DATE_COLUMNS = ("received_at", "due_at", "finished_at", "returned_at", "updated_at")
FUTURE_CHECKED = ("received_at", "finished_at", "returned_at", "updated_at")
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = 5


def canonical_dossiers(landed: dict[str, Manifest], settings: Settings, var: Path, period: Period,
                       out: Path, now: datetime | None = None) -> tuple[int, list[Finding]]:
    """Write every record source's canonical dossiers to `out`; returns the row count and findings.
    `now` (local time; the current time by default) is when a date becomes a date in the future."""
    con = duckdb.connect()
    findings: list[Finding] = []
    selects = []
    now = now or datetime.now(LOCAL).replace(tzinfo=None)
    for source_id, manifest in sorted(landed.items()):
        source = settings.source(source_id)
        if source.kind not in ("http_api", "agency_db"):
            continue
        for error in manifest.errors:  # records the extractor could not land (no dossier code…)
            findings.append(Finding(
                "extract.rejected_record", "warning", error["message"], period.start, period.end,
                source_id=source_id, unit_code=error.get("unit_code"), columns=[error["column"]] if error.get("column") else [],
                location=error.get("where")))
        path = var / "landing" / period.label / source_id / manifest.files[0]["path"]
        view = f"raw_{len(selects)}"
        con.read_parquet(str(path)).create_view(view)
        names = PORTAL_COLUMNS if source.kind == "http_api" else {k: k for k in DOSSIER_COLUMNS if k != "source_id"}
        mapping = source.spec.get("mapping", {})
        _register_codes(con, f"{view}_status", mapping.get("status", {}))
        _register_codes(con, f"{view}_channel", mapping.get("channel", {}))
        date_expr = (lambda col: f"try_strptime({col}, '%Y%m%d%H%M%S')") if source.kind == "http_api" \
            else (lambda col: f"try_cast({col} AS TIMESTAMP)")
        q = lambda k: f'r."{names[k]}"'  # noqa: E731 - names come from PORTAL_COLUMNS or the model, not from config
        if source.kind == "http_api":
            paid = f"{q('paid_online')} IN ('1', '2')"
            digitised = f"coalesce(list_contains(json_extract_string({q('results_digitised')}, '$[*].DuocSoHoa'), '1'), false)"
        else:
            paid = f"{q('paid_online')} IN ('1', 'true', 'True')"
            digitised = f"{q('results_digitised')} IN ('1', 'true', 'True')"
        select = f"""
            SELECT ? AS source_id, {q('dossier_id')} AS dossier_id, {q('procedure_code')} AS procedure_code,
                   {q('field_code')} AS field_code, {q('unit_code')} AS unit_code,
                   coalesce(ch.canonical, CASE WHEN {q('channel')} IS NULL THEN nullch.canonical END) AS channel,
                   {', '.join(f'{date_expr(q(c))}::TIMESTAMP_S AS {c}' for c in DATE_COLUMNS)},
                   st.canonical::SMALLINT AS status,
                   try_cast({q('fee_amount')} AS BIGINT) AS fee_amount,
                   coalesce({paid}, false) AS paid_online, {digitised} AS results_digitised,
                   {q('channel')} AS raw_channel, {q('status')} AS raw_status, {q('fee_amount')} AS raw_fee_amount,
                   {', '.join(f'{q(c)} AS raw_{c}' for c in DATE_COLUMNS)}
            FROM {view} r
            LEFT JOIN {view}_status st ON st.raw = r."{names['status']}"
            LEFT JOIN {view}_channel ch ON ch.raw = r."{names['channel']}"
            LEFT JOIN (SELECT canonical FROM {view}_channel WHERE raw IS NULL) nullch ON true
        """
        con.execute(f"CREATE TEMP TABLE canon_{view} AS {select}", [source_id]).fetchall()
        findings += _problems(con, f"canon_{view}", source_id, period, now)
        selects.append(f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM canon_{view}")
    if not selects:
        pq.write_table(DOSSIER_SCHEMA.empty_table(), out)
        return 0, findings
    # one row per dossier and source: a later update of the same dossier replaces the earlier
    union = " UNION ALL ".join(selects)
    table = con.sql(f"""
        SELECT {', '.join(DOSSIER_COLUMNS)} FROM ({union})
        QUALIFY row_number() OVER (PARTITION BY source_id, dossier_id ORDER BY updated_at DESC NULLS LAST) = 1
        ORDER BY source_id, dossier_id
    """).to_arrow_table()
    pq.write_table(table.cast(DOSSIER_SCHEMA), out, compression="zstd")
    return table.num_rows, findings


def _register_codes(con: duckdb.DuckDBPyConnection, name: str, codes: dict) -> None:
    raw = [None if k is None or str(k).lower() == "null" else str(k) for k in codes]
    canonical = [str(v) for v in codes.values()]
    con.register(name, pa.table({"raw": pa.array(raw, pa.string()), "canonical": pa.array(canonical, pa.string())}))


def _problems(con: duckdb.DuckDBPyConnection, table: str, source_id: str, period: Period,
              now: datetime) -> list[Finding]:
    checks = {
        "fee_amount": ("raw_fee_amount IS NOT NULL AND fee_amount IS NULL", "raw_fee_amount", "a fee in VND"),
        "status": ("raw_status IS NOT NULL AND status IS NULL", "raw_status", "a status code of the source's mapping"),
        "channel": ("raw_channel IS NOT NULL AND channel IS NULL", "raw_channel", "a channel code of the source's mapping"),
        "unit_code": ("unit_code IS NULL", "NULL", "a unit code"),
        "dossier_id": ("dossier_id IS NULL", "NULL", "a dossier code"),
        **{c: (f"raw_{c} IS NOT NULL AND {c} IS NULL", f"raw_{c}", "a date and time") for c in DATE_COLUMNS},
    }
    findings = []
    for column, (condition, raw, expected) in checks.items():
        count, examples = con.execute(
            f"SELECT count(*), (list(struct_pack(id := dossier_id, value := {raw}::VARCHAR)))[1:{EXAMPLES}] "
            f"FROM {table} WHERE {condition}").fetchall()[0]
        if count:
            shown = ", ".join(f"{e['id']}={e['value']!r}" for e in examples)
            findings.append(Finding(
                "records.unreadable_value", "warning",
                f"{source_id}: {count} hồ sơ có giá trị {column} không đọc được (cần {expected}); ví dụ: {shown}",
                period.start, period.end, source_id=source_id, columns=[column], observed=str(count), expected=expected,
                location=f"{source_id} landing, column {column}"))
    # a moment that has not happened yet: a wrong clock or a typing error; due dates may be ahead
    stamp = f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
    for column in FUTURE_CHECKED:
        count, examples = con.execute(
            f"SELECT count(*), (list(struct_pack(id := dossier_id, value := raw_{column}::VARCHAR) ORDER BY dossier_id))"
            f"[1:{EXAMPLES}] FROM {table} WHERE {column} > {stamp}").fetchall()[0]
        if count:
            shown = ", ".join(f"{e['id']}={e['value']!r}" for e in examples)
            findings.append(Finding(
                "records.date_in_future", "warning",
                f"{source_id}: {count} hồ sơ có {column} sau thời điểm chạy ({now:%d/%m/%Y %H:%M}): ngày trong tương lai; "
                f"ví dụ: {shown}", period.start, period.end, source_id=source_id, columns=[column], observed=str(count),
                expected=f"{column} no later than {now:%Y-%m-%d %H:%M}", location=f"{source_id} landing, column {column}"))
    return findings


def self_reported_figures(landed: dict[str, Manifest], settings: Settings, var: Path, period: Period,
                          out: Path) -> tuple[int, list[Finding]]:
    """Biểu 06 rows typed by the units, one per unit and field (total rows are kept aside)."""
    findings: list[Finding] = []
    frames = []
    con = duckdb.connect()
    for source_id, manifest in sorted(landed.items()):
        if settings.source(source_id).kind != "spreadsheet":
            continue
        for error in manifest.errors:
            findings.append(Finding(
                "extract.unreadable_input", "critical" if error.get("quarantined") else "warning",
                f"{error.get('where') or source_id}: {error['message']}", period.start, period.end,
                source_id=source_id, unit_code=error.get("unit_code"), basis="self_reported",
                location=error.get("where")))
        for warning in manifest.warnings:
            findings.append(Finding(
                "extract.input_warning", "warning", f"{warning.get('where') or source_id}: {warning['message']}",
                period.start, period.end, source_id=source_id, unit_code=warning.get("unit_code"),
                basis="self_reported", location=warning.get("where")))
        path = var / "landing" / period.label / source_id / manifest.files[0]["path"]
        frames.append(con.sql(f"""
            SELECT unit_code, period_start, period_end, field_code, {', '.join(FIGURES)},
                   'self_reported' AS basis, $source_id AS source_id, file AS landed_file
            FROM read_parquet($path) WHERE NOT is_total
        """, params={"source_id": source_id, "path": str(path)}).to_arrow_table())
    table = pa.concat_tables([f.cast(BIEU06_SCHEMA) for f in frames]) if frames else BIEU06_SCHEMA.empty_table()
    pq.write_table(table.select(BIEU06_COLUMNS), out)
    return table.num_rows, findings
