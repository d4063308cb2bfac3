"""`tthc validate FILE...`: Biểu 06 rows of workbooks or canonical CSV validated offline,
without a warehouse: the same suite and diagnosis as a run, on the figures in the files.

The files are read by the caller (runner/validate_files.py), chunk by chunk, and validated here
as a stream within a memory bound whatever their size (README, "Validation"):
1. every chunk's rows are staged in a Parquet file in a temporary folder, and the findings of
   reading them are written at once;
2. what needs the whole input is computed from that file by DuckDB (memory-limited, it spills
   to the same folder): which keys repeat (`schema.key_unique`), the
   previous period's pending figure of each row (`continuity.carried_over`), and the sums of the
   parts of every total row and parent unit (`rollup.*`);
3. the rows come back in chunks and each is prepared, sieved (validations.gx.sieve) and the rows
   to list are validated by GX, diagnosed and written; then the roll-ups.
Findings are bounded too: at most `max_per_check` of each check are listed, the others counted
in one `findings.capped` finding per check.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tthc import duck
from tthc.checks import CHECKS
from tthc.findings import Finding
from tthc.form import REPORTED_FIGURES
from validations.bieu06_rows import (CHILDREN_SUMS, _row_dict, bieu06_suite, broken_rows, children_of,
                                     diagnosis_findings, prepare_rows, rollup_finding, row_findings)
from validations.diagnosis import diagnose
from validations.gx import KEY_UNIQUE, ROW_ID, GxSession, sieve

ROW_SCHEMA = pa.schema([("unit_code", pa.string()), ("field_code", pa.string()), ("period_start", pa.date32()),
                        ("period_end", pa.date32()), *[(name, pa.int64()) for name in REPORTED_FIGURES],
                        ("source_id", pa.string()), ("basis", pa.string()), ("landed_file", pa.string()),
                        ("row", pa.int64()), ("parent_code", pa.string())])
CHUNK_ROWS = 50_000
MAX_PER_CHECK = 500
DUCKDB_MEMORY_LIMIT = "128MB"
GX_BATCH_ROWS = 20_000  # rows to list are validated by GX in batches of about this many
IDENTITY_FINDINGS = tuple(c for c in CHECKS if c.startswith(("identity.", "diagnosis.")) and c not in (
    "identity.unchecked", "identity.balance_approximate"))


class FindingsOut:
    """Where the findings go as they come: JSON written item by item (the same text as one
    `json.dumps(list, indent=1)`), or text, sorted by severity once all are in (they are
    bounded: at most `max_per_check` per check). Counts what it does not list."""

    def __init__(self, output_format: str, stream: TextIO, max_per_check: int | None = None):
        self.format, self.stream = output_format, stream
        self.max_per_check = MAX_PER_CHECK if max_per_check is None else max_per_check
        self.listed: dict[str, int] = {}
        self.not_listed: dict[str, tuple[str, int]] = {}  # check → (severity, count)
        self.severities = {"critical": 0, "warning": 0, "info": 0}
        self.text: list[Finding] = []
        self.items = 0
        self.by_check: dict[tuple[str, str], int] = {}  # (check, severity) → findings, listed or not

    def take(self, check_id: str, severity: str, count: int) -> int:
        """Of `count` findings of a check, how many may be listed; the others are counted."""
        granted = max(0, min(count, self.max_per_check - self.listed.get(check_id, 0)))
        self.listed[check_id] = self.listed.get(check_id, 0) + granted
        if count > granted:
            worst, seen = self.not_listed.get(check_id, (severity, 0))
            self.not_listed[check_id] = (_worse(worst, severity), seen + count - granted)
        self.severities[severity] += count - granted
        if count > granted:
            self.by_check[(check_id, severity)] = self.by_check.get((check_id, severity), 0) + count - granted
        return granted

    def offer(self, findings: Iterable[Finding], diagnoses: dict | None = None) -> None:
        """Findings not counted yet: each listed while its check has room."""
        self.write([f for f in findings if self.take(f.check_id, f.severity, 1)], diagnoses)

    def write(self, findings: list[Finding], diagnoses: dict | None = None) -> None:
        """Findings already counted by `take`."""
        for f in findings:
            self.severities[f.severity] += 1
            if f.check_id != "findings.capped":
                self.by_check[(f.check_id, f.severity)] = self.by_check.get((f.check_id, f.severity), 0) + 1
        if self.format == "json":
            for item in as_json(findings, diagnoses or {}):
                text = json.dumps(item, ensure_ascii=False, indent=1, default=str).replace("\n", "\n ")
                self.stream.write(("[\n " if self.items == 0 else ",\n ") + text)
                self.items += 1
        else:
            self.text += findings

    @property
    def any_critical(self) -> bool:
        return self.severities["critical"] > 0

    def close(self) -> None:
        counts = dict(self.severities)
        capped = []
        for check_id, (severity, count) in self.not_listed.items():
            check = CHECKS[check_id]
            capped.append(Finding(
                "findings.capped", severity,
                f"{check.title}: đã liệt kê {self.listed[check_id]} phát hiện đầu tiên, còn {count} phát hiện "
                f"cùng loại không liệt kê (tổng {self.listed[check_id] + count})", columns=[],
                observed=json.dumps({"check": check_id, "listed": self.listed[check_id], "not_listed": count}),
                location=check_id))
        self.write(capped)
        if self.format == "json":
            self.stream.write("\n]\n" if self.items else "[]\n")
        else:
            self.stream.write(as_text(self.text, counts, self.by_check) + "\n")
        self.stream.flush()


def _worse(a: str, b: str) -> str:
    order = ("critical", "warning", "info")
    return a if order.index(a) <= order.index(b) else b


class StreamingValidation:
    """Rows added chunk by chunk (`add`), validated when all are in (`finish`) with bounded memory:
    the rows wait in a Parquet file, never in Python."""

    def __init__(self, units: pd.DataFrame, field_codes: Iterable[str], convention: str, out: FindingsOut,
                 chunk_rows: int | None = None, workdir: Path | None = None):
        self.units, self.field_codes, self.convention, self.out = units, list(field_codes), convention, out
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self._tmp = tempfile.TemporaryDirectory(prefix="tthc_validate_", dir=workdir)
        folder = Path(self._tmp.name)
        settings = {"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": 2, "preserve_insertion_order": True,
                    "temp_directory": str(folder / "spill"), **duck.config()}
        self.con = duckdb.connect(config=settings)
        self.con.execute("SET enable_progress_bar = false")
        self.staged = folder / "rows.parquet"
        self.writer = pq.ParquetWriter(self.staged, pa.schema([("seq", pa.int64()), *ROW_SCHEMA]))
        self.rows = 0
        self.con.register("validity", pa.table({
            "unit_code": pa.array(list(units["unit_code"]), pa.string()),
            "valid_from": pa.array(list(units["valid_from"]), pa.date32()),
            "valid_to": pa.array(list(units["valid_to"]), pa.date32())}))

    def __enter__(self) -> StreamingValidation:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()
        self.con.close()
        self._tmp.cleanup()

    def add(self, rows: pa.Table, findings: list[Finding]) -> None:
        """Stage a chunk of rows (ROW_SCHEMA); the findings of reading them are written now."""
        self.out.offer(findings)
        if rows.num_rows == 0:
            return
        chunk = rows.cast(ROW_SCHEMA).add_column(0, "seq", pa.array(range(self.rows, self.rows + rows.num_rows),
                                                                    pa.int64()))
        self.writer.write_table(chunk)
        self.rows += rows.num_rows

    def finish(self) -> None:
        self.writer.close()
        if not self.rows:
            return
        self.con.read_parquet(str(self.staged)).create_view("rows")
        self.session = GxSession()
        self.suite = bieu06_suite("bieu06_canonical", unique_keys=KEY_UNIQUE, reported_shapes=True,
                                  period_severity="warning")
        self._register_kids()
        pending: list[pd.DataFrame] = []
        waiting = 0
        context = self.con.sql(_CONTEXT).to_arrow_reader(self.chunk_rows)
        for batch, known in _aligned(pq.ParquetFile(self.staged).iter_batches(self.chunk_rows), context):
            frame = batch.to_pandas()
            for name in ("key_unique", "previous_pending_total", "unit_in_force"):
                frame[name] = known.column(name).to_pandas()
            listed = self._sieved(frame)
            if listed is not None and len(listed):
                pending.append(listed)
                waiting += len(listed)
            if waiting >= GX_BATCH_ROWS:
                self._validate(pending)
                pending, waiting = [], 0
        context.close()
        if pending:
            self._validate(pending)
        self._rollups()

    # ------------------------------------------------------------ rows

    def _sieved(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """The chunk's rows that will be listed (for a check or the diagnosis), each with the
        checks it is listed for in `listed_for`; the rest of its failures only counted."""
        frame["previous_pending_total"] = pd.to_numeric(frame["previous_pending_total"], errors="coerce")
        frame = prepare_rows(frame, field_codes=self.field_codes,
                             convention=self.convention)
        listed_for: dict[int, list[tuple]] = {}
        for check_id, severity, columns, ids in sieve(frame, self.suite):
            granted = self.out.take(check_id, severity, len(ids))
            for row_id in ids[:granted]:
                listed_for.setdefault(row_id, []).append((check_id, tuple(columns)))
        broken = broken_rows(frame)
        granted = self.out.take("diagnosis.typing_error", CHECKS["diagnosis.typing_error"].severity, len(broken))
        for row_id in broken[:granted]:
            listed_for.setdefault(int(row_id), []).append(("diagnosis.typing_error", ()))
        if not listed_for:
            return None
        keep = sorted(listed_for)
        listed = frame.iloc[keep].copy()
        listed["listed_for"] = [listed_for[i] for i in keep]
        return listed

    def _validate(self, pending: list[pd.DataFrame]) -> None:
        """GX on the rows to list, then the diagnosis of those listed for it; written in the
        order a whole-file validation gives (check by check, row by row)."""
        frame = pd.concat(pending, ignore_index=True)
        frame[ROW_ID] = range(len(frame))
        allowed = {}
        for row_id, checks in enumerate(frame["listed_for"]):
            for key in checks:
                allowed.setdefault(key, set()).add(row_id)
        failed = self.session.validate(frame.drop(columns=["listed_for"]), self.suite)
        self.session.forget_results()
        failed = [(c, s, cols, [i for i in ids if i in allowed.get((c, tuple(cols)), ())]) for c, s, cols, ids in failed]
        to_diagnose = sorted(set(allowed.get(("diagnosis.typing_error", ()), ())).union(
            *[ids for c, _s, _cols, ids in failed if c in IDENTITY_FINDINGS]))
        children = self._children_sums(frame, to_diagnose) if to_diagnose else {}
        frame[CHILDREN_SUMS] = [json.dumps(children[i]) if i in children else None for i in range(len(frame))]
        findings = row_findings(frame, failed, None)
        diagnosed_rows = sorted(allowed.get(("diagnosis.typing_error", ()), ()))
        diagnosed, diagnoses = diagnosis_findings(frame, None, diagnosed_rows) if diagnosed_rows else ([], {})
        for c, _s, _cols, ids in failed:  # an identity listed without its diagnosis still shows the candidates
            if c in IDENTITY_FINDINGS:
                for row_id in ids:
                    diagnoses.setdefault(row_id, diagnose(_row_dict(frame.iloc[row_id]), children_of(frame.iloc[row_id])))
        by_row = {}
        for row_id, diagnosis in sorted(diagnoses.items()):
            row = frame.iloc[row_id]
            by_row[(row["source_id"], row["unit_code"], row["field_code"], row["period_start"])] = diagnosis
        self.out.write(findings, by_row)
        self.out.write(diagnosed, by_row)

    def _register_kids(self) -> None:
        """Parent → unit, from the unit lists and from the files' own `parent_code` column (a unit a
        file names under a parent is its part for that file, in force or not)."""
        kids = sorted({(parent, code) for code, parent in zip(self.units["unit_code"], self.units["parent_code"])
                       if isinstance(parent, str) and parent})  # a province's missing parent is no unit
        self.con.register("listed_kids", pa.table({"parent": pa.array([p for p, _ in kids], pa.string()),
                                                   "child": pa.array([c for _, c in kids], pa.string())}))
        self.con.execute(_KIDS)

    def _children_sums(self, frame: pd.DataFrame, row_ids: list[int]) -> dict[int, dict]:
        """For the rows to diagnose: the sums of a total row's field rows, or of a parent unit's
        units when every one of them is in the files; figures given by every child only."""
        asked = frame.iloc[row_ids]
        self.con.register("asked", pa.table({
            "row_id": pa.array(row_ids, pa.int64()), "source_id": pa.array(list(asked["source_id"]), pa.string()),
            "unit_code": pa.array(list(asked["unit_code"]), pa.string()),
            "field_code": pa.array([f or "" for f in asked["field_code"]], pa.string()),
            "period_start": pa.array(list(pd.to_datetime(asked["period_start"]).dt.date), pa.date32()),
            "period_end": pa.array(list(pd.to_datetime(asked["period_end"]).dt.date), pa.date32())}))
        found = {}
        for row in self.con.sql(_CHILDREN.format(sums=_SUMS)).to_arrow_table().to_pylist():
            if not row["complete"]:
                continue
            sums = {n: row[f"s_{n}"] for n in REPORTED_FIGURES if row[f"k_{n}"] == row["parts"] and row["parts"]}
            if sums:
                found[row["row_id"]] = sums
        self.con.unregister("asked")
        return found

    # ------------------------------------------------------------ roll-ups

    def _rollups(self) -> None:
        """A unit's total row (no field) against its field rows; a parent unit's rows against its
        units' rows for the same period and field, where both are in the files."""
        for query, complete in ((_TOTAL_ROWS, "true"), (_PARENT_UNITS, "complete")):
            reader = self.con.sql(query.format(sums=_SUMS, complete=complete)).to_arrow_reader(self.chunk_rows)
            for batch in reader:
                for row in batch.to_pylist():
                    parts = {name: (row[f"s_{name}"] or 0, row[f"k_{name}"], row["parts"]) for name in REPORTED_FIGURES}
                    finding = rollup_finding(row, parts, bool(row["complete"]), row["check_id"], None)
                    if finding is not None:
                        self.out.offer([finding])


# of every row in order: whether its key repeats anywhere in the input, the pending figure of the
# previous period of the same unit and field (the last row that gives one, as a dict would) and
# whether its unit is in force at the period's end; narrow, so that the sort by seq spills little
_CONTEXT = """
    WITH repeated AS (
        SELECT unit_code, period_start, period_end, field_code FROM rows GROUP BY ALL HAVING count(*) > 1),
    pending AS (
        SELECT unit_code, field_code, period_end, arg_max(pending_total, seq) AS pending_total
        FROM rows WHERE pending_total IS NOT NULL GROUP BY ALL)
    SELECT r.seq, k.period_start IS NULL AS key_unique, p.pending_total AS previous_pending_total,
        EXISTS (SELECT 1 FROM validity v WHERE v.unit_code = r.unit_code
                AND v.valid_from <= r.period_end AND r.period_end <= v.valid_to) AS unit_in_force
    FROM rows r
    LEFT JOIN repeated k ON k.unit_code IS NOT DISTINCT FROM r.unit_code AND k.period_start = r.period_start
        AND k.period_end = r.period_end AND k.field_code IS NOT DISTINCT FROM r.field_code
    LEFT JOIN pending p ON p.unit_code IS NOT DISTINCT FROM r.unit_code
        AND p.field_code IS NOT DISTINCT FROM r.field_code AND p.period_end = CAST(r.period_start - 1 AS DATE)
    ORDER BY r.seq
"""


# a parent the files name (`parent_code`) has exactly the units named under it; any other, the
# units of the lists
_KIDS = """
    CREATE OR REPLACE TABLE kids AS
    WITH declared AS (
        SELECT DISTINCT parent_code AS parent, unit_code AS child FROM rows
        WHERE parent_code IS NOT NULL AND unit_code IS NOT NULL)
    SELECT parent, child, true AS declared FROM declared
    UNION ALL
    SELECT parent, child, false FROM listed_kids WHERE parent NOT IN (SELECT parent FROM declared)
"""

# the children of each asked row: a total row's field rows (complete by definition), or a parent
# unit's units in force (or named under it by the file) for the same period and field
_CHILDREN = """
    WITH fields AS (
        SELECT a.row_id, true AS complete, {sums}
        FROM asked a JOIN rows c ON c.source_id = a.source_id AND c.unit_code IS NOT DISTINCT FROM a.unit_code
            AND c.period_start = a.period_start AND coalesce(c.field_code, '') <> ''
        WHERE a.field_code = ''
        GROUP BY a.row_id),
    wanted AS (
        SELECT DISTINCT a.row_id, a.period_start, a.period_end, a.field_code, k.child FROM asked a
        JOIN kids k ON k.parent = a.unit_code
        WHERE k.declared OR EXISTS (SELECT 1 FROM validity v WHERE v.unit_code = k.child
                                    AND v.valid_from <= a.period_end AND a.period_end <= v.valid_to)),
    units AS (
        SELECT w.row_id, bool_and(c.seq IS NOT NULL) AS complete, {sums}
        FROM wanted w LEFT JOIN rows c ON c.unit_code = w.child AND c.period_start = w.period_start
            AND c.period_end = w.period_end AND coalesce(c.field_code, '') = w.field_code
        GROUP BY w.row_id)
    SELECT * FROM fields UNION ALL SELECT * FROM units WHERE row_id NOT IN (SELECT row_id FROM fields)
"""


def _aligned(batches, context: pa.RecordBatchReader):
    """The staged rows' batches, each with the rows of `context` (ordered by seq too) beside it."""
    waiting = None
    for batch in batches:
        while waiting is None or waiting.num_rows < batch.num_rows:
            more = pa.Table.from_batches([context.read_next_batch()])
            waiting = more if waiting is None else pa.concat_tables([waiting, more])
        known, waiting = waiting.slice(0, batch.num_rows), waiting.slice(batch.num_rows)
        if known.column("seq")[0] != batch.column("seq")[0]:
            raise RuntimeError("tthc validate: staged rows and their context are out of step")
        yield batch, known


_SUMS = ", ".join(f"CAST(sum(c.{n}) AS BIGINT) AS s_{n}, count(c.{n}) AS k_{n}" for n in REPORTED_FIGURES) \
    + ", count(*) AS parts"

# a total row (no field) against the field rows of its file, unit and start; in the order of a
# pandas groupby on (source_id, unit_code, period_start), then the file's
_TOTAL_ROWS = """
    WITH totals AS (SELECT DISTINCT source_id, unit_code, period_start FROM rows WHERE coalesce(field_code, '') = ''),
    sums AS (
        SELECT c.source_id, c.unit_code, c.period_start, {sums}
        FROM rows c SEMI JOIN totals t ON t.source_id = c.source_id AND t.unit_code IS NOT DISTINCT FROM c.unit_code
            AND t.period_start = c.period_start
        WHERE coalesce(c.field_code, '') <> '' GROUP BY ALL)
    SELECT t.*, s.* EXCLUDE (source_id, unit_code, period_start), {complete} AS complete,
           'rollup.total_row' AS check_id
    FROM rows t JOIN sums s ON s.source_id = t.source_id AND s.unit_code IS NOT DISTINCT FROM t.unit_code
        AND s.period_start = t.period_start
    WHERE coalesce(t.field_code, '') = ''
    ORDER BY t.source_id, t.unit_code NULLS LAST, t.period_start, t.seq
"""
# a parent unit's row against the rows of its units in force at the period's end, for the same
# period and field; complete when every such unit has a row. Groupby order on (period_start,
# period_end, field_code), then the file's
_PARENT_UNITS = """
    WITH parents AS (
        SELECT DISTINCT period_start, period_end, field_code, unit_code AS parent FROM rows
        WHERE unit_code IN (SELECT parent FROM kids)),
    in_force AS (
        SELECT DISTINCT p.*, k.child FROM parents p JOIN kids k ON k.parent = p.parent
        WHERE k.declared OR EXISTS (SELECT 1 FROM validity v WHERE v.unit_code = k.child
                      AND v.valid_from <= p.period_end AND p.period_end <= v.valid_to)),
    present AS (
        SELECT DISTINCT period_start, period_end, field_code, unit_code FROM rows
        WHERE unit_code IN (SELECT child FROM in_force)),
    coverage AS (
        SELECT i.period_start, i.period_end, i.field_code, i.parent, bool_and(x.unit_code IS NOT NULL) AS complete
        FROM in_force i LEFT JOIN present x ON x.period_start = i.period_start AND x.period_end = i.period_end
            AND x.field_code IS NOT DISTINCT FROM i.field_code AND x.unit_code = i.child
        GROUP BY ALL),
    sums AS (
        SELECT i.period_start, i.period_end, i.field_code, i.parent, {sums}
        FROM in_force i JOIN rows c ON c.period_start = i.period_start AND c.period_end = i.period_end
            AND c.field_code IS NOT DISTINCT FROM i.field_code AND c.unit_code = i.child
        GROUP BY ALL)
    SELECT t.*, s.* EXCLUDE (period_start, period_end, field_code, parent), v.{complete},
           'rollup.units' AS check_id
    FROM rows t
    JOIN sums s ON s.period_start = t.period_start AND s.period_end = t.period_end
        AND s.field_code IS NOT DISTINCT FROM t.field_code AND s.parent = t.unit_code
    JOIN coverage v ON v.period_start = t.period_start AND v.period_end = t.period_end
        AND v.field_code IS NOT DISTINCT FROM t.field_code AND v.parent = t.unit_code
    ORDER BY t.period_start, t.period_end, t.field_code NULLS LAST, t.seq
"""


def as_json(findings: list[Finding], diagnoses: dict) -> list[dict]:
    out = []
    for f in findings:
        diagnosis = diagnoses.get((f.source_id, f.unit_code, f.field_code, f.period_start)) \
            if f.check_id in IDENTITY_FINDINGS else None
        out.append({
            "unit_code": f.unit_code, "period_start": _iso(f.period_start), "period_end": _iso(f.period_end),
            "field_code": f.field_code or None, "check": f.check_id, "severity": f.severity, "message": f.message,
            "columns": f.columns, "observed": _json(f.observed), "expected": _json(f.expected),
            "suggested_fix": f.suggested_fix, "candidates": diagnosis.ranked() if diagnosis else [],
            "ambiguous": bool(diagnosis and diagnosis.ambiguous), "file": f.source_id, "location": f.location,
        })
    return out


# how the summary at the end of the text output groups checks: units and periods apart from the
# form's identities (a file's convention and unit list are not always the province's)
SUMMARY_GROUPS = (("Đơn vị, lĩnh vực và kỳ báo cáo", ("unit.", "field.", "period.", "schema.key_")),
                  ("Đọc ô số liệu", ("schema.count_", "schema.layout", "extract.")),
                  ("Đẳng thức của biểu và chẩn đoán", ("identity.", "diagnosis.")),
                  ("Đối chiếu giữa các dòng, các kỳ", ("rollup.", "continuity.")))
SEVERITY_WORDS = {"critical": "nghiêm trọng", "warning": "cảnh báo", "info": "thông tin"}


def summary_lines(by_check: dict[tuple[str, str], int]) -> list[str]:
    """Per group of checks, per check and severity, how many findings (listed or not)."""
    lines, done = ["Tóm tắt theo loại kiểm tra:"], set()
    groups = [*SUMMARY_GROUPS, ("Khác", ("",))]
    for label, prefixes in groups:
        mine = sorted((k for k in by_check if k not in done and k[0].startswith(prefixes)),
                      key=lambda k: k[0])
        if not mine:
            continue
        lines.append(f"  {label}:")
        for check_id in dict.fromkeys(c for c, _ in mine):
            counts = ", ".join(f"{by_check[(check_id, s)]} {SEVERITY_WORDS[s]}" for s in SEVERITY_WORDS
                               if (check_id, s) in by_check)
            lines.append(f"    {check_id}: {counts}")
        done.update(mine)
    return lines if len(lines) > 1 else []


def as_text(findings: list[Finding], counts: dict | None = None,
            by_check: dict[tuple[str, str], int] | None = None) -> str:
    """The findings by severity, then unit; then how many of each check and severity, in groups;
    the last line counts them all (those not listed too)."""
    lines = []
    for f in sorted(findings, key=lambda f: ({"critical": 0, "warning": 1, "info": 2}[f.severity], f.unit_code or "")):
        fix = ""
        if f.suggested_fix:
            fix = " → đề xuất: " + ", ".join(f"{k} = {v}" for k, v in f.suggested_fix.items())
        lines.append(f"[{f.severity}] {f.check_id} {f.location or f.source_id or ''}: {f.message}{fix}")
    if counts is None:
        counts = {s: sum(f.severity == s for f in findings) for s in ("critical", "warning", "info")}
    if by_check is None:
        by_check = {}
        for f in findings:
            by_check[(f.check_id, f.severity)] = by_check.get((f.check_id, f.severity), 0) + 1
    lines += summary_lines({k: v for k, v in by_check.items() if k[0] != "findings.capped"})
    lines.append(f"Tổng: {counts['critical']} nghiêm trọng, {counts['warning']} cảnh báo, {counts['info']} thông tin")
    return "\n".join(lines)


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _json(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text

