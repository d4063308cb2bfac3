"""Landed raw data → the canonical model (docs/canonical-model.md).

Set-based in DuckDB so that cost stays close to reading the Parquet. Values that cannot be
read become findings that name the source, the column and example dossiers; the record is
kept with the value unknown.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extractors.base import Manifest
from tthc import duck
from tthc.config import Settings
from tthc.findings import Finding
from tthc.model import BIEU06_COLUMNS, BIEU06_SCHEMA, DOSSIER_COLUMNS, DOSSIER_SCHEMA, FIGURES
from tthc.duck import write_parquet, write_tables
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
    con = duck.connect()
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
            SELECT src.source_id AS source_id, {q('dossier_id')} AS dossier_id, {q('procedure_code')} AS procedure_code,
                   {q('field_code')} AS field_code, {q('unit_code')} AS unit_code,
                   coalesce(map_extract_value((SELECT map(list(raw), list(canonical)) FROM {view}_channel WHERE raw IS NOT NULL),
                                              {q('channel')}),
                            CASE WHEN {q('channel')} IS NULL THEN (SELECT any_value(canonical) FROM {view}_channel WHERE raw IS NULL) END)
                       AS channel,
                   {', '.join(f'{date_expr(q(c))}::TIMESTAMP_S AS {c}' for c in DATE_COLUMNS)},
                   map_extract_value((SELECT map(list(raw), list(canonical)) FROM {view}_status WHERE raw IS NOT NULL),
                                     {q('status')})::SMALLINT AS status,
                   try_cast({q('fee_amount')} AS BIGINT) AS fee_amount,
                   coalesce({paid}, false) AS paid_online, {digitised} AS results_digitised,
                   {q('channel')} AS raw_channel, {q('status')} AS raw_status, {q('fee_amount')} AS raw_fee_amount,
                   {', '.join(f'{q(c)} AS raw_{c}' for c in DATE_COLUMNS)}
            FROM {view} r CROSS JOIN {view}_source src
        """
        con.register(f"{view}_source", pa.table({"source_id": pa.array([source_id], pa.string())}))
        # a view, not a table: the landed file is read once for the checks and once for the output;
        # codes are looked up in maps, not joined, so that records keep the landing's order
        con.execute(f"CREATE TEMP VIEW canon_{view} AS {select}").fetchall()
        findings += _problems(con, f"canon_{view}", source_id, period, now)
        selects.append(f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM canon_{view}")
    if not selects:
        pq.write_table(DOSSIER_SCHEMA.empty_table(), out)
        return 0, findings
    # one row per dossier and source: a later update of the same dossier replaces the earlier.
    # Landings are ordered by dossier id (docs/extractors.md): then the records stream through in
    # order and repeated ids, which are adjacent, are settled as they pass, with no sort of the
    # whole set. A landing out of order falls back to a window over every record.
    union = " UNION ALL ".join(selects)
    rows = _write_in_order(con.sql(f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM ({union})"), out)
    if rows is None:
        rows = write_parquet(con.sql(f"""
            SELECT {', '.join(DOSSIER_COLUMNS)} FROM ({union})
            QUALIFY row_number() OVER (PARTITION BY source_id, dossier_id ORDER BY updated_at DESC NULLS LAST) = 1
            ORDER BY source_id, dossier_id
        """), out, DOSSIER_SCHEMA, compression="zstd")
    return rows, findings


class _OutOfOrder(Exception):
    pass


def _latest_of_runs(table: pa.Table) -> pa.Table:
    """`table` ordered by (source_id, dossier_id): one row per key, the one updated last (nulls
    last; ties: the first)."""
    n = table.num_rows
    if n < 2:
        return table
    keys = pc.binary_join_element_wise(table.column("source_id"), table.column("dossier_id"), "\x00")
    same = np.asarray(pc.equal(keys.slice(0, n - 1), keys.slice(1)).to_numpy(zero_copy_only=False), dtype=bool)
    if not same.any():
        return table
    in_run = np.concatenate([same, [False]]) | np.concatenate([[False], same])
    rows = np.flatnonzero(in_run)  # the rows of every repeated key (few), in order
    updated = table.column("updated_at").take(pa.array(rows)).to_pylist()
    keep = np.ones(n, dtype=bool)
    run: list[int] = []
    for position, row in enumerate(rows):
        run.append(position)
        if row == n - 1 or not same[row]:  # the run ends here
            best = max(run, key=lambda p: (updated[p] is not None, updated[p] or 0, -p))
            for p in run:
                keep[rows[p]] = p == best
            run = []
    return table.filter(pa.array(keep))


def _latest_in_order(reader: pa.RecordBatchReader) -> Iterator[pa.Table]:
    """The records, ordered by (source_id, dossier_id), with only the latest update of a repeated
    id; raises _OutOfOrder at the first record out of that order."""
    previous_key = None
    carry: pa.Table | None = None
    for batch in reader:
        table = pa.Table.from_batches([batch]).cast(DOSSIER_SCHEMA)
        if not table.num_rows:
            continue
        keys = pc.binary_join_element_wise(table.column("source_id"), table.column("dossier_id"), "\x00")
        n = table.num_rows
        if n > 1 and not pc.all(pc.less_equal(keys.slice(0, n - 1), keys.slice(1))).as_py():
            raise _OutOfOrder()
        if previous_key is not None and keys[0].as_py() < previous_key:
            raise _OutOfOrder()
        last = keys[n - 1].as_py()
        if carry is not None:
            table = pa.concat_tables([carry, table])
            keys = pc.binary_join_element_wise(table.column("source_id"), table.column("dossier_id"), "\x00")
            n = table.num_rows
        # hold back the last key's rows: its run may go on in the next batch
        tail = int(pc.sum(pc.equal(keys, last)).as_py())
        carry = table.slice(n - tail)
        yield _latest_of_runs(table.slice(0, n - tail))
        previous_key = last
    if carry is not None:
        yield _latest_of_runs(carry)


def _write_in_order(relation, out: Path) -> int | None:
    """Streams the records to `out` if they come ordered by (source_id, dossier_id), keeping the
    latest update of a repeated id; None (and nothing written) if they do not."""
    try:
        return write_tables(_latest_in_order(relation.to_arrow_reader(100_000)), out, DOSSIER_SCHEMA,
                            compression="zstd")
    except _OutOfOrder:
        out.unlink(missing_ok=True)
        return None


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
    # every check in one pass over the records
    stamp = f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
    parts = []
    for column, (condition, raw, expected) in checks.items():
        parts.append(f"count(*) FILTER (WHERE {condition})")
        parts.append(f"(list(struct_pack(id := dossier_id, value := {raw}::VARCHAR)) FILTER (WHERE {condition}))[1:{EXAMPLES}]")
    for column in FUTURE_CHECKED:
        parts.append(f"count(*) FILTER (WHERE {column} > {stamp})")
        parts.append(f"(list(struct_pack(id := dossier_id, value := raw_{column}::VARCHAR) ORDER BY dossier_id) "
                     f"FILTER (WHERE {column} > {stamp}))[1:{EXAMPLES}]")
    values = con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchall()[0]
    findings = []
    for i, (column, (condition, raw, expected)) in enumerate(checks.items()):
        count, examples = values[2 * i], values[2 * i + 1]
        if count:
            shown = ", ".join(f"{e['id']}={e['value']!r}" for e in examples)
            findings.append(Finding(
                "records.unreadable_value", "warning",
                f"{source_id}: {count} hồ sơ có giá trị {column} không đọc được (cần {expected}); ví dụ: {shown}",
                period.start, period.end, source_id=source_id, columns=[column], observed=str(count), expected=expected,
                location=f"{source_id} landing, column {column}"))
    # a moment that has not happened yet: a wrong clock or a typing error; due dates may be ahead
    for j, column in enumerate(FUTURE_CHECKED):
        count, examples = values[2 * (len(checks) + j)], values[2 * (len(checks) + j) + 1]
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
