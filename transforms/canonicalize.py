"""Landed raw data → the canonical model (docs/canonical-model.md).

Set-based in DuckDB so that cost stays close to reading the Parquet. Values that cannot be
read become findings that name the source, the column and example dossiers; the record is
kept with the value unknown.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tthc import duck
from tthc.findings import Finding, finding
from tthc.form import BESIDE_FORM_FIGURES, FIGURES
from tthc.landing import CODED_COLUMNS, RAW_COLUMNS, SELF_REPORTED, CanonicalSelect, LandedSource
from tthc.model import BIEU06_COLUMNS, BIEU06_SCHEMA, DOSSIER_COLUMNS, DOSSIER_SCHEMA, KEYED_DOSSIER_SCHEMA
from tthc.duck import write_parquet, write_tables
from tthc.periods import Period

DATE_COLUMNS = ("received_at", "due_at", "finished_at", "returned_at", "updated_at")
FUTURE_CHECKED = ("received_at", "finished_at", "returned_at", "updated_at")
PLAUSIBLE_FROM = date(2000, 1, 1)  # the default of reliability.plausible_from
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = 5


def canonical_dossiers(landed: list[LandedSource], period: Period, out: Path, now: datetime | None = None,
                       several_units_out: Path | None = None, plausible_from: date = PLAUSIBLE_FROM,
                       reshape: Callable[[pa.Table], pa.Table | None] | None = None) -> tuple[int, list[Finding]]:
    """Write the canonical dossiers of every landed source with a canonical select (records
    sources) to `out`; returns the row count and findings. `now` (local time; the current time
    by default) is when a date becomes a date in the future. `several_units_out` receives the
    (source_id, dossier_id) that a source lists under more than one unit: de-duplication keeps
    one of them, so validation could not see it afterwards. A date before `plausible_from` is
    implausible (records.date_implausible): the record is kept and counted by its dates. `reshape`
    (SuccessorPlacement, HandedOverLater) is given the records as they are written, in order, and
    returns them changed (None: unchanged); the row count returned is of the records written."""
    con = duck.connect()
    findings: list[Finding] = []
    views: list[tuple[str, str]] = []
    now = now or datetime.now(LOCAL).replace(tzinfo=None)
    checks = _checks(now, plausible_from)
    for source in sorted(landed, key=lambda s: s.source_id):
        if source.canonical is None:
            continue
        source_id = source.source_id
        for error in source.manifest.errors:  # records the extractor could not land (no dossier code…)
            findings.append(finding(
                "extract.rejected_record", error["message"], period.start, period.end,
                source_id=source_id, unit_code=error.get("unit_code"), columns=[error["column"]] if error.get("column") else [],
                location=error.get("where")))
        view = f"raw_{len(views)}"
        con.read_parquet(str(source.path)).create_view(view)
        for column in CODED_COLUMNS:
            _register_codes(con, f"{view}_{column}", source.canonical.codes.get(column, {}))
        select = _select(view, _complete(source_id, source.canonical))
        con.register(f"{view}_source", pa.table({"source_id": pa.array([source_id], pa.string())}))
        # codes are looked up in maps, not joined, so that records keep the landing's order
        con.execute(f"CREATE TEMP VIEW canon_{view} AS {select}").fetchall()
        views.append((f"canon_{view}", source_id))
    if not views:
        pq.write_table(KEYED_DOSSIER_SCHEMA.empty_table(), out)
        _write_ids(several_units_out, [])
        return 0, findings
    # one row per dossier and source: a later update of the same dossier replaces the earlier.
    # Landings are ordered by dossier id (docs/extractors.md): then the records stream through in
    # order, once, and repeated ids, which are adjacent, are settled as they pass, with no sort of
    # the whole set; the same pass counts the values that cannot be read. A landing out of order
    # falls back to a window over every record and a pass of its own for the checks.
    flagged = " UNION ALL ".join(
        f"SELECT {', '.join(DOSSIER_COLUMNS)}, {_flags_sql(checks)} FROM {name}" for name, _ in views)
    tally = _Tally(len(checks))
    several: list[tuple[str, str]] = []
    rows = _write_in_order(con.sql(flagged), out, tally, several, reshape)
    if rows is not None:
        for _, source_id in views:
            findings += _findings(checks, tally.counts(source_id), tally.examples(source_id), source_id, period, now)
    else:
        union = " UNION ALL ".join(f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM {name}" for name, _ in views)
        for name, source_id in views:
            findings += _problems(con, checks, name, source_id, period, now)
        rows = write_parquet(con.sql(f"""
            SELECT {', '.join(DOSSIER_COLUMNS)} FROM ({union})
            QUALIFY row_number() OVER (PARTITION BY source_id, dossier_id ORDER BY updated_at DESC NULLS LAST) = 1
            ORDER BY source_id, dossier_id
        """), out, KEYED_DOSSIER_SCHEMA, compression="zstd")
        if reshape is not None and _rewrite(out, reshape):
            rows = pq.ParquetFile(out).metadata.num_rows
        several = con.sql(f"""
            SELECT source_id, dossier_id FROM ({union}) GROUP BY ALL HAVING min(unit_code) <> max(unit_code)
            ORDER BY ALL
        """).fetchall()
    _write_ids(several_units_out, several)
    return rows, findings


_VALUES = tuple(c for c in DOSSIER_COLUMNS if c != "source_id" and c not in CODED_COLUMNS)


def _complete(source_id: str, select: CanonicalSelect) -> CanonicalSelect:
    """The select, refused when it does not say how to get every canonical column."""
    lacking = sorted(set(_VALUES) - set(select.values)) + sorted(f"raw {c}" for c in set(RAW_COLUMNS) - set(select.raw))
    if lacking:
        raise ValueError(f"{source_id}: the canonical select of its kind does not give {lacking}")
    return select


def _select(view: str, select: CanonicalSelect) -> str:
    """The canonical records of one landed view: the kind's expressions, the registry's codes
    looked up in the view's code tables, the raw values kept for the checks."""
    value, raw = select.values, select.raw

    def coded(column: str) -> str:
        codes = f"(SELECT map(list(raw), list(canonical)) FROM {view}_{column} WHERE raw IS NOT NULL)"
        return f"map_extract_value({codes}, {raw[column]})"

    return f"""
            SELECT src.source_id AS source_id, {value['dossier_id']} AS dossier_id, {value['procedure_code']} AS procedure_code,
                   {value['field_code']} AS field_code, {value['unit_code']} AS unit_code,
                   coalesce({coded('channel')},
                            CASE WHEN {raw['channel']} IS NULL
                                 THEN (SELECT any_value(canonical) FROM {view}_channel WHERE raw IS NULL) END)
                       AS channel,
                   {', '.join(f'{value[c]} AS {c}' for c in DATE_COLUMNS)}, {value['paused_at']} AS paused_at,
                   {value['entered_at']} AS entered_at,
                   {coded('status')}::SMALLINT AS status,
                   {value['fee_amount']} AS fee_amount,
                   {value['paid_online']} AS paid_online, {value['results_digitised']} AS results_digitised,
                   {raw['channel']} AS raw_channel, {raw['status']} AS raw_status, {raw['fee_amount']} AS raw_fee_amount,
                   {', '.join(f'{raw[c]} AS raw_{c}' for c in DATE_COLUMNS)}
            FROM {view} r CROSS JOIN {view}_source src
        """


class _OutOfOrder(Exception):
    pass


def _keys(table: pa.Table) -> pa.ChunkedArray:
    """The order of canonical records: (source_id, dossier_id); a piece of one source (the
    usual case) is ordered by its dossier ids alone, which need no joined copy."""
    sources = table.column("source_id")
    bounds = pc.min_max(sources)
    if bounds["min"].as_py() == bounds["max"].as_py():
        return table.column("dossier_id")
    return pc.binary_join_element_wise(sources, table.column("dossier_id"), "\x00")


def _latest_of_runs(table: pa.Table, same: np.ndarray, several: list[tuple[str, str]]) -> pa.Table:
    """`table` ordered by (source_id, dossier_id), `same[i]` whether row i+1 has row i's key: one
    row per key, the one updated last (nulls last; ties: the first). Keys whose rows name more
    than one unit are added to `several`."""
    n = table.num_rows
    if n < 2 or not same.any():
        return table
    in_run = np.concatenate([same, [False]]) | np.concatenate([[False], same])
    rows = np.flatnonzero(in_run)  # the rows of every repeated key (few), in order
    picked = pa.array(rows)
    updated = table.column("updated_at").take(picked).to_pylist()
    units = table.column("unit_code").take(picked).to_pylist()
    keep = np.ones(n, dtype=bool)
    run: list[int] = []
    for position, row in enumerate(rows):
        run.append(position)
        if row == n - 1 or not same[row]:  # the run ends here
            best = max(run, key=lambda p: (updated[p] is not None, updated[p] or 0, -p))
            for p in run:
                keep[rows[p]] = p == best
            if len({units[p] for p in run} - {None}) > 1:
                first = int(rows[run[0]])
                several.append((table.column("source_id")[first].as_py(), table.column("dossier_id")[first].as_py()))
            run = []
    # the kept rows as slices of the table (no copy): a repeated key drops only a row or two
    starts = np.flatnonzero(keep & ~np.concatenate([[False], keep[:-1]]))
    ends = np.flatnonzero(keep & ~np.concatenate([keep[1:], [False]])) + 1
    return pa.concat_tables([table.slice(int(a), int(b - a)) for a, b in zip(starts, ends)]) if starts.size \
        else table.slice(0, 0)


def _latest_in_order(reader: pa.RecordBatchReader, tally: "_Tally",
                     several: list[tuple[str, str]]) -> Iterator[pa.Table]:
    """The records, ordered by (source_id, dossier_id), with only the latest update of a repeated
    id; raises _OutOfOrder at the first record out of that order. Every record, repeated or
    not, is counted in `tally` first."""
    carry: pa.Table | None = None  # the last key's rows: its run may go on in the next batch
    for batch in reader:
        if not batch.num_rows:
            continue
        table = pa.Table.from_batches([batch])
        tally.add(table)
        table = table.select(DOSSIER_COLUMNS).cast(DOSSIER_SCHEMA)
        if carry is not None:
            table = pa.concat_tables([carry, table])
        keys = _keys(table)
        n = table.num_rows
        same = np.zeros(0, dtype=bool)
        if n > 1:
            head, rest = keys.slice(0, n - 1), keys.slice(1)
            if not pc.all(pc.less_equal(head, rest)).as_py():
                raise _OutOfOrder()
            same = np.asarray(pc.equal(head, rest).to_numpy(zero_copy_only=False), dtype=bool)
        breaks = np.flatnonzero(~same)
        tail = n - 1 - int(breaks[-1]) if breaks.size else n
        carry = table.slice(n - tail)
        yield _latest_of_runs(table.slice(0, n - tail), same[:max(n - tail - 1, 0)], several)
    if carry is not None:
        yield _latest_of_runs(carry, np.ones(carry.num_rows - 1, dtype=bool), several)


def _write_in_order(relation, out: Path, tally: "_Tally", several: list[tuple[str, str]],
                    reshape: Callable[[pa.Table], pa.Table | None] | None = None) -> int | None:
    """Streams the records to `out` if they come ordered by (source_id, dossier_id), keeping the
    latest update of a repeated id, each piece through `reshape`; None (and nothing written or counted)
    if they do not."""
    pieces = _latest_in_order(relation.to_arrow_reader(100_000), tally, several)
    if reshape is not None:
        pieces = (piece if (changed := reshape(piece)) is None else changed for piece in pieces)
    try:
        return write_tables(pieces, out, KEYED_DOSSIER_SCHEMA, compression="zstd")
    except _OutOfOrder:
        out.unlink(missing_ok=True)
        tally.clear()
        several.clear()
        if reshape is not None and hasattr(reshape, "reset"):
            reshape.reset()
        return None


def _write_ids(out: Path | None, ids: list[tuple[str, str]]) -> None:
    if out is not None:
        pq.write_table(pa.table({"source_id": pa.array([s for s, _ in ids], pa.string()),
                                 "dossier_id": pa.array([d for _, d in ids], pa.string())}), out)


def _register_codes(con: duckdb.DuckDBPyConnection, name: str, codes: dict) -> None:
    raw = [None if k is None or str(k).lower() == "null" else str(k) for k in codes]
    canonical = [str(v) for v in codes.values()]
    con.register(name, pa.table({"raw": pa.array(raw, pa.string()), "canonical": pa.array(canonical, pa.string())}))


@dataclass(frozen=True)
class _Check:
    check_id: str
    column: str
    condition: str  # SQL over a canonical view (canonical and raw_ columns)
    raw: str  # the value shown in examples
    expected: str


def _checks(now: datetime, plausible_from: date = PLAUSIBLE_FROM) -> list[_Check]:
    """Values that cannot be read, then moments that have not happened yet at `now` (a wrong
    clock or a typing error; due dates may be ahead), then dates before `plausible_from` (1900
    for 2000, a default date of the vendor's software)."""
    stamp = f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
    unreadable = {
        "fee_amount": ("raw_fee_amount IS NOT NULL AND fee_amount IS NULL", "raw_fee_amount", "a fee in VND"),
        "status": ("raw_status IS NOT NULL AND status IS NULL", "raw_status", "a status code of the source's mapping"),
        "channel": ("raw_channel IS NOT NULL AND channel IS NULL", "raw_channel", "a channel code of the source's mapping"),
        "unit_code": ("unit_code IS NULL", "NULL", "a unit code"),
        "dossier_id": ("dossier_id IS NULL", "NULL", "a dossier code"),
        **{c: (f"raw_{c} IS NOT NULL AND {c} IS NULL", f"raw_{c}", "a date and time") for c in DATE_COLUMNS},
    }
    return [_Check("records.unreadable_value", column, condition, raw, expected)
            for column, (condition, raw, expected) in unreadable.items()] + [
        _Check("records.date_in_future", column, f"{column} > {stamp}", f"raw_{column}",
               f"{column} no later than {now:%Y-%m-%d %H:%M}") for column in FUTURE_CHECKED] + [
        _Check("records.date_implausible", column, f"{column} < TIMESTAMP '{plausible_from:%Y-%m-%d} 00:00:00'",
               f"raw_{column}", f"{column} on or after {plausible_from:%Y-%m-%d}") for column in DATE_COLUMNS]


def _flags_sql(checks: list[_Check]) -> str:
    """Two columns beside each record: `problems`, bit i set when it fails check i, and, for a
    record with any, `problem_values`, the value each check would show."""
    bits = " | ".join(f"(coalesce({c.condition}, false)::INTEGER << {i})" for i, c in enumerate(checks))
    values = ", ".join(f"{c.raw}::VARCHAR" for c in checks)
    return f"({bits}) AS problems, CASE WHEN ({bits}) <> 0 THEN [{values}] END AS problem_values"


class _Tally:
    """Per source and check, the records failing it and the first few of them, in stream order
    (the landing's, by dossier id)."""

    def __init__(self, checks: int):
        self.checks = checks
        self._counts: dict[str, list[int]] = {}
        self._examples: dict[str, list[list[dict]]] = {}

    def add(self, table: pa.Table) -> None:
        problems = np.asarray(table.column("problems").to_numpy(zero_copy_only=False))
        flagged = np.flatnonzero(problems)
        if not flagged.size:
            return
        picked = pa.array(flagged)
        sources = table.column("source_id").take(picked).to_numpy(zero_copy_only=False)
        ids = table.column("dossier_id").take(picked)
        values = table.column("problem_values").take(picked)
        bits = problems[flagged]
        for source_id in dict.fromkeys(sources):
            counts = self._counts.setdefault(source_id, [0] * self.checks)
            examples = self._examples.setdefault(source_id, [[] for _ in range(self.checks)])
            of_source = sources == source_id
            for i in range(self.checks):
                failing = np.flatnonzero(of_source & ((bits >> i) & 1).astype(bool))
                counts[i] += int(failing.size)
                for row in failing[:EXAMPLES - len(examples[i])]:
                    examples[i].append({"id": ids[int(row)].as_py(), "value": values[int(row)].as_py()[i]})

    def counts(self, source_id: str) -> list[int]:
        return self._counts.get(source_id, [0] * self.checks)

    def examples(self, source_id: str) -> list[list[dict]]:
        return self._examples.get(source_id, [[] for _ in range(self.checks)])

    def clear(self) -> None:
        self._counts.clear()
        self._examples.clear()


def _problems(con: duckdb.DuckDBPyConnection, checks: list[_Check], table: str, source_id: str, period: Period,
              now: datetime) -> list[Finding]:
    """The checks in a pass of their own over `table` (records out of order)."""
    parts = []
    for check in checks:
        parts.append(f"count(*) FILTER (WHERE {check.condition})")
        parts.append(f"(list(struct_pack(id := dossier_id, value := {check.raw}::VARCHAR) ORDER BY dossier_id) "
                     f"FILTER (WHERE {check.condition}))[1:{EXAMPLES}]")
    values = con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchall()[0]
    return _findings(checks, list(values[0::2]), list(values[1::2]), source_id, period, now)


def _findings(checks: list[_Check], counts: list[int], examples: list[list[dict]], source_id: str, period: Period,
              now: datetime) -> list[Finding]:
    findings = []
    for check, count, shown_examples in zip(checks, counts, examples):
        if not count:
            continue
        shown = ", ".join(f"{e['id']}={e['value']!r}" for e in shown_examples)
        if check.check_id == "records.unreadable_value":
            message = (f"{source_id}: {count} hồ sơ có giá trị {check.column} không đọc được (cần {check.expected}); "
                       f"ví dụ: {shown}")
        elif check.check_id == "records.date_implausible":
            message = (f"{source_id}: {count} hồ sơ có {check.column} trước ngày {check.expected[-10:]} (ngoài "
                       f"khoảng ngày hợp lý, reliability.plausible_from): hồ sơ vẫn được giữ và tính theo ngày đã "
                       f"ghi, đề nghị đơn vị sửa lại; ví dụ: {shown}")
        else:
            message = (f"{source_id}: {count} hồ sơ có {check.column} sau thời điểm chạy ({now:%d/%m/%Y %H:%M}): "
                       f"ngày trong tương lai, hồ sơ vẫn được giữ; ví dụ: {shown}")
        findings.append(finding(
            check.check_id, message, period.start, period.end, source_id=source_id, columns=[check.column],
            observed=str(count), expected=check.expected, location=f"{source_id} landing, column {check.column}"))
    return findings


# the workbooks' total rows ("Tổng cộng"), kept aside from the field rows: where each is and its figures
TOTAL_ROWS_SCHEMA = pa.schema([
    pa.field("source_id", pa.string()), pa.field("landed_file", pa.string()), pa.field("sheet", pa.string()),
    pa.field("row", pa.int32()), pa.field("unit_code", pa.string()), pa.field("period_start", pa.date32()),
    pa.field("period_end", pa.date32()), pa.field("field_name", pa.string()),
    *[pa.field(name, pa.int64()) for name in FIGURES], pa.field("basis", pa.string())])


def self_reported_figures(landed: list[LandedSource], period: Period, out: Path,
                          totals_out: Path) -> tuple[int, list[Finding]]:
    """Biểu 06 rows typed by the units, one per unit and field, to `out`; the workbooks' total
    rows go to `totals_out` (TOTAL_ROWS_SCHEMA), for the check of each total against its rows."""
    findings: list[Finding] = []
    frames, totals = [], []
    con = duckdb.connect()
    for source in sorted(landed, key=lambda s: s.source_id):
        if source.basis != SELF_REPORTED:
            continue
        source_id, manifest = source.source_id, source.manifest
        for error in manifest.errors:
            findings.append(finding(
                "extract.unreadable_input", f"{error.get('where') or source_id}: {error['message']}",
                period.start, period.end, severity="critical" if error.get("quarantined") else None,
                source_id=source_id, unit_code=error.get("unit_code"), basis="self_reported",
                location=error.get("where")))
        for warning in manifest.warnings:
            findings.append(finding(
                "extract.input_warning", f"{warning.get('where') or source_id}: {warning['message']}",
                period.start, period.end, source_id=source_id, unit_code=warning.get("unit_code"),
                basis="self_reported", location=warning.get("where")))
        params = {"source_id": source_id, "path": str(source.path)}
        frames.append(con.sql(f"""
            SELECT unit_code, period_start, period_end, field_code, {', '.join(FIGURES)},
                   {', '.join(f'NULL::BIGINT AS {name}' for name in BESIDE_FORM_FIGURES)},
                   'self_reported' AS basis, $source_id AS source_id, file AS landed_file
            FROM read_parquet($path) WHERE NOT is_total
        """, params=params).to_arrow_table())
        totals.append(con.sql(f"""
            SELECT $source_id AS source_id, file AS landed_file, sheet, "row", unit_code, period_start, period_end,
                   field_name, {', '.join(FIGURES)}, 'self_reported' AS basis
            FROM read_parquet($path) WHERE is_total
        """, params=params).to_arrow_table())
    table = pa.concat_tables([f.cast(BIEU06_SCHEMA) for f in frames]) if frames else BIEU06_SCHEMA.empty_table()
    pq.write_table(table.select(BIEU06_COLUMNS), out)
    pq.write_table(pa.concat_tables([t.cast(TOTAL_ROWS_SCHEMA) for t in totals]) if totals
                   else TOTAL_ROWS_SCHEMA.empty_table(), totals_out)
    return table.num_rows, findings


def _rewrite(path: Path, change) -> bool:
    """Rewrite the canonical dossiers file batch by batch, in order: `change(table)` gives the table to
    write, or None when it stays as it is. The file is replaced only when a batch changed."""
    source = pq.ParquetFile(path)
    target = path.with_name(path.name + ".rewriting")
    changed = False
    with pq.ParquetWriter(target, source.schema_arrow) as writer:
        for batch in source.iter_batches():
            table = pa.Table.from_batches([batch])
            new = change(table)
            changed |= new is not None
            writer.write_table(table if new is None else new)
    if changed:
        target.replace(path)
    else:
        target.unlink()
    return changed


def _pairs(first: pa.ChunkedArray | pa.Array, second: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.binary_join_element_wise(pc.fill_null(first, ""), pc.fill_null(second, ""), "\x00")


def _count_by(columns: dict[str, pa.Array], mask, into: dict[tuple, int]) -> None:
    counts = pa.table(columns).filter(mask).group_by(list(columns)).aggregate([([], "count_all")])
    for *key, n in zip(*(counts.column(c).to_pylist() for c in [*columns, "count_all"])):
        into[tuple(key)] = into.get(tuple(key), 0) + n


class SuccessorPlacement:
    """Records of a quarter after the reform that still carry an old unit's code (a vendor keeps it on its
    records for a while) are put on the successor that took the unit's dossiers over: `field_successor`
    (old code, field) → successor first, else `successor_of` old code → successor. A code the reform gave
    to a new unit while its old commune went into another (`reused`: code → that other) is the new unit's,
    but on a record received before `reform`, which the new unit did not exist to receive (and not entered
    after it, under the new unit's code by the software that took it over): that record is the old
    commune's, put on its successor. A record whose source does not serve its successor (`elsewhere`:
    (source, successor)) is the old software's copy of a dossier the successor's own software carries on:
    left out. Called on the canonical records piece by piece, in order; counts the records placed per
    (source, old code, successor) in `placed`, and those under an `unplaceable` old code (a split's), left
    as they are, per (source, old code) in `unplaced`."""

    def __init__(self, successor_of: dict[str, str], field_successor: dict[tuple[str, str], str],
                 elsewhere: set[tuple[str, str]] = frozenset(), unplaceable: set[str] = frozenset(),
                 reused: dict[str, str] | None = None, reform: datetime | None = None):
        reused = reused if reused and reform is not None else {}
        self.placed: dict[tuple[str, str, str], int] = {}
        self.unplaced: dict[tuple[str, str], int] = {}
        self.active = bool(successor_of or field_successor or unplaceable or reused)
        self._by_code = (pa.array(list(successor_of), pa.string()), pa.array(list(successor_of.values()), pa.string()))
        self._by_field = (pa.array(["\x00".join(k) for k in field_successor], pa.string()),
                          pa.array(list(field_successor.values()), pa.string()))
        self._by_old_meaning = (pa.array(list(reused), pa.string()), pa.array(list(reused.values()), pa.string()))
        self._moment = pa.scalar(reform, pa.timestamp("s")) if reform is not None else None
        self._away = pa.array(sorted("\x00".join(k) for k in elsewhere), pa.string())
        self._stuck = pa.array(sorted(unplaceable), pa.string())

    def reset(self) -> None:
        self.placed, self.unplaced = {}, {}

    def __call__(self, table: pa.Table) -> pa.Table | None:
        if not self.active or not table.num_rows:
            return None
        codes, sources = table.column("unit_code"), table.column("source_id")
        if len(self._stuck):
            _count_by({"source_id": sources, "unit_code": codes}, pc.is_in(codes, value_set=self._stuck), self.unplaced)
        successor = pc.coalesce(
            pc.take(self._by_field[1], pc.index_in(_pairs(codes, table.column("field_code")), value_set=self._by_field[0])),
            pc.take(self._by_code[1], pc.index_in(codes, value_set=self._by_code[0])))
        if len(self._by_old_meaning[0]):
            old_meaning = pc.take(self._by_old_meaning[1], pc.index_in(codes, value_set=self._by_old_meaning[0]))
            received_before = pc.fill_null(pc.and_(
                pc.less(table.column("received_at"), self._moment),
                pc.invert(pc.fill_null(pc.greater_equal(table.column("entered_at"), self._moment), False))), False)
            successor = pc.coalesce(successor, pc.if_else(received_before, old_meaning, pa.scalar(None, pa.string())))
        placed = pc.is_valid(successor)
        if not pc.any(placed).as_py():
            return None
        _count_by({"source_id": sources, "unit_code": codes, "successor": successor}, placed, self.placed)
        index = table.schema.get_field_index("unit_code")
        table = table.set_column(index, table.schema.field(index), pc.if_else(placed, successor, codes))
        left_out = pc.fill_null(pc.is_in(_pairs(sources, successor), value_set=self._away), False)
        return table.filter(pc.invert(left_out)) if pc.any(left_out).as_py() else table


class HandedOverLater:
    """In a quarter before the reform: a record that a unit's software entered on or after the reform for a
    dossier received before it, where the unit took over that field's dossiers (`taken_over`: (unit, field),
    field "" for every field), is a dossier handed over to it on the reform; then it was its old unit's,
    which reports it. Left out; `left` counts them per (source, unit)."""

    def __init__(self, reform: datetime, taken_over: set[tuple[str, str]]):
        self.left: dict[tuple[str, str], int] = {}
        self.active = bool(taken_over)
        self._pairs = pa.array(sorted("\x00".join(k) for k in taken_over), pa.string())
        self._units = pa.array(sorted(u for u, f in taken_over if not f), pa.string())
        self._moment = pa.scalar(reform, pa.timestamp("s"))

    def reset(self) -> None:
        self.left = {}

    def __call__(self, table: pa.Table) -> pa.Table | None:
        entered = table.column("entered_at")
        if not self.active or entered.null_count == len(entered):
            return None
        codes = table.column("unit_code")
        later = pc.and_(pc.less(table.column("received_at"), self._moment), pc.greater_equal(entered, self._moment))
        target = pc.or_(pc.is_in(_pairs(codes, table.column("field_code")), value_set=self._pairs),
                        pc.is_in(codes, value_set=self._units))
        handed = pc.fill_null(pc.and_(later, target), False)
        if not pc.any(handed).as_py():
            return None
        _count_by({"source_id": table.column("source_id"), "unit_code": codes}, handed, self.left)
        return table.filter(pc.invert(handed))


def place_on_successors(path: Path, *args, **kwargs
                        ) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], int]]:
    """SuccessorPlacement on a canonical dossiers file, rewritten in place."""
    placement = SuccessorPlacement(*args, **kwargs)
    if placement.active and path.exists():
        _rewrite(path, placement)
    return placement.placed, placement.unplaced


def leave_out_handed_over(path: Path, reform: datetime, taken_over: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """HandedOverLater on a canonical dossiers file, rewritten in place."""
    leaving = HandedOverLater(reform, taken_over)
    if leaving.active and path.exists():
        _rewrite(path, leaving)
    return leaving.left
