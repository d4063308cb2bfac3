"""`tthc validate FILE...`: the files read — Biểu 06 workbooks through the spreadsheet
extractor, canonical CSV here, chunk by chunk — and their rows handed to validations/offline.py,
which validates them as a stream; the findings written as text or JSON as they come.

Every way a canonical CSV is read is here (issue 17 adds columns and number forms to it): a
chunk of the file becomes an Arrow table of ROW_SCHEMA and the findings of its unreadable cells."""
from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tthc.checks import CHECKS
from tthc.config import Settings
from tthc.findings import Finding
from tthc.form import REPORTED_FIGURES
from tthc.form import REPORTED_LABELS as FIGURE_LABELS
from tthc.numbers import APPROXIMATIONS_VI, ApproximateCount, NotACount, read_count, reading_vi
from validations.offline import ROW_SCHEMA, FindingsOut, StreamingValidation

KEY_COLUMNS = ("unit_code", "period_start", "period_end")
CHUNK_BYTES = 2 << 20  # about 25,000 rows of a canonical CSV per chunk; pyarrow reads ahead several blocks
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# the count forms parsed without Python: plain digits, thousands grouped with "."; every other
# cell goes through tthc.numbers.read_count, which decides (and words the error or the reading)
_PLAIN = r"^(?:0|[1-9]\d{0,17})$"
_GROUPED = r"^\d{1,3}(\.\d{3}){1,5}$"


class UnreadableFile(Exception):
    """The file cannot be read as a Biểu 06 workbook or a canonical CSV; the message says why."""


def parse_date(text: str) -> date:
    text = (text or "").strip()
    if m := _DMY.match(text):
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    return datetime.strptime(text[:10], "%Y-%m-%d").date()


def read_csv(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[pa.Table, list[Finding]]]:
    """The rows of a canonical CSV, one chunk at a time, with the findings of their cells. Memory
    holds one chunk: the file is read by pyarrow's streaming reader, every column as text, and
    rows with too few or too many cells are read as csv.DictReader reads them."""
    header = _header(path)
    wanted = [h for h in header if h in (*KEY_COLUMNS, "field_code", "parent_code", *REPORTED_FIGURES)]
    ragged: list[tuple[int, str]] = []

    def keep_ragged(row) -> str:
        ragged.append((row.number, row.text))
        return "skip"

    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(use_threads=False, block_size=chunk_bytes, column_names=header,
                                                 skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep_ragged),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, include_columns=wanted,
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnreadableFile(f"{path.name}: không đọc được tệp: {exc}") from None
    line = 2
    dates: dict[str, date | None] = {}
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableFile(f"{path.name}: không đọc được tệp: {exc}") from None
        columns = {name: batch.column(name) for name in wanted}
        mine = _ragged_of(ragged, line + batch.num_rows)
        numbers = pa.array(range(line, line + batch.num_rows + len(mine)), pa.int64())
        if mine:
            columns, numbers = _with_ragged(columns, numbers, mine, header, wanted)
        line += len(numbers)
        yield _rows(path, columns, numbers, dates)
    if ragged:  # ragged rows after the last well-formed one
        columns = {name: pa.array([], pa.string()) for name in wanted}
        numbers = pa.array(range(line, line + len(ragged)), pa.int64())
        yield _rows(path, *_with_ragged(columns, numbers, list(ragged), header, wanted), dates)


def _ragged_of(ragged: list[tuple[int, str]], end: int) -> list[tuple[int, str]]:
    """The ragged rows among the records before `end` (each one skipped moves the end by one);
    the parser may have met them while reading ahead, so later ones stay for the next chunk."""
    ragged.sort()
    mine = []
    while ragged and ragged[0][0] < end + len(mine):
        mine.append(ragged.pop(0))
    return mine


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"{path.name}: không đọc được tệp: {exc}") from None
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise UnreadableFile(f"{path.name}: thiếu cột {', '.join(missing)} (cần {', '.join(KEY_COLUMNS)}, "
                             "field_code và các cột số liệu)")
    return _unique_names(header)


def _unique_names(header: list[str]) -> list[str]:
    """pyarrow needs distinct names; a repeated column keeps its last cell, as in csv.DictReader."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        seen[name] = i
    return [name if seen[name] == i else f"\0{i}" for i, name in enumerate(header)]


def _with_ragged(columns: dict, numbers: pa.Array, ragged: list[tuple[int, str]], header: list[str],
                 wanted: list[str]):
    """The chunk's rows with its ragged rows put back in their places, their cells as csv.DictReader
    reads them: missing cells are empty (None), cells beyond the header dropped."""
    lines = [n for n, _ in ragged]
    keep = pc.invert(pc.is_in(numbers, pa.array(lines, pa.int64())))
    kept_numbers = numbers.filter(keep)
    extra = {name: [] for name in wanted}
    for _, text in ragged:
        cells = next(csv.reader([text]), [])
        for name in wanted:
            i = header.index(name)
            extra[name].append(cells[i] if i < len(cells) else None)
    order = pc.sort_indices(pa.concat_arrays([kept_numbers, pa.array(lines, pa.int64())]))
    merged = {name: pa.concat_arrays([pa.concat_arrays(col.chunks) if isinstance(col, pa.ChunkedArray) else col,
                                      pa.array(extra[name], pa.string())]).take(order)
              for name, col in columns.items()}
    return merged, pa.concat_arrays([kept_numbers, pa.array(lines, pa.int64())]).take(order)


def _rows(path: Path, columns: dict, numbers: pa.Array, dates: dict) -> tuple[pa.Table, list[Finding]]:
    """A chunk of cells as rows of ROW_SCHEMA; a row whose period cannot be read is a finding and
    no row. Findings come in the file's order: by line, then figure."""
    n = len(numbers)
    lines = numbers.to_pylist()
    units = _stripped(columns.get("unit_code"), n)
    unit_codes = pc.if_else(pc.equal(units, ""), pa.nulls(n, pa.string()), units)
    fields = pc.fill_null(_stripped(columns.get("field_code"), n), "")
    starts, start_ok = _dates(columns["period_start"], dates)
    ends, end_ok = _dates(columns["period_end"], dates)
    readable = pc.and_(start_ok, end_ok)
    found: list[tuple[int, int, Finding]] = []
    for i in pc.indices_nonzero(pc.invert(readable)).to_pylist():
        where = f"{path.name}, dòng {lines[i]}"
        s, e = columns["period_start"][i].as_py(), columns["period_end"][i].as_py()
        found.append((lines[i], -1, Finding(
            "period.convention", "critical", f"{where}: ngày đầu hoặc ngày cuối kỳ không đọc được: {s!r}, {e!r}",
            unit_code=unit_codes[i].as_py(), field_code=fields[i].as_py(), source_id=path.name,
            columns=["period_start", "period_end"], location=where)))
    good = pc.indices_nonzero(readable)
    starts, ends = starts.take(good), ends.take(good)
    take = good
    table = {"unit_code": unit_codes.take(take), "field_code": fields.take(take), "period_start": starts,
             "period_end": ends}
    kept_lines = numbers.take(take)
    for k, name in enumerate(REPORTED_FIGURES):
        cells = columns.get(name)
        if cells is None:
            table[name] = pa.nulls(len(good), pa.int64())
            continue
        values, errors = _counts(cells.take(take) if isinstance(cells, pa.Array) else cells.take(take))
        table[name] = values
        for i, why in errors:
            row = {"unit_code": table["unit_code"][i].as_py(), "field_code": table["field_code"][i].as_py(),
                   "source_id": path.name, "period_start": starts[i].as_py(), "period_end": ends[i].as_py()}
            line = kept_lines[i].as_py()
            found.append((line, k, _unreadable(name, why, row, f"{path.name}, dòng {line}")))
    m = len(good)
    parents = _stripped(columns.get("parent_code"), n).take(take)
    table.update({"source_id": pa.array([path.name] * m, pa.string()), "basis": pa.array(["self_reported"] * m, pa.string()),
                  "landed_file": pa.array([path.name] * m, pa.string()), "row": kept_lines,
                  "parent_code": pc.if_else(pc.equal(parents, ""), pa.nulls(m, pa.string()), parents)})
    found.sort(key=lambda item: (item[0], item[1]))
    return pa.table(table, schema=ROW_SCHEMA), [f for *_, f in found]


def _stripped(cells, n: int) -> pa.Array:
    if cells is None:
        return pa.nulls(n, pa.string())
    cells = pa.concat_arrays(cells.chunks) if isinstance(cells, pa.ChunkedArray) else cells
    return pc.utf8_trim_whitespace(cells)


def _dates(cells, dates: dict) -> tuple[pa.Array, pa.Array]:
    """A column of dates (each distinct text parsed once) and whether each could be read."""
    cells = pa.concat_arrays(cells.chunks) if isinstance(cells, pa.ChunkedArray) else cells
    distinct = pc.unique(cells)
    parsed = pa.array([_date(text, dates) for text in distinct.to_pylist()], pa.date32())
    values = parsed.take(pc.index_in(cells, distinct))
    return values, pc.is_valid(values)


def _date(text: str | None, dates: dict) -> date | None:
    if text not in dates:
        try:
            dates[text] = parse_date(text)
        except (ValueError, TypeError):
            dates[text] = None
    return dates[text]


def _counts(cells) -> tuple[pa.Array, list[tuple[int, object]]]:
    """A column of cells as counts (null = not reported) and the (row, why) of the cells to report:
    why is the NotACount of an unreadable one, or the Reading of one read from another form."""
    cells = pa.concat_arrays(cells.chunks) if isinstance(cells, pa.ChunkedArray) else cells
    plain = pc.fill_null(pc.match_substring_regex(cells, _PLAIN), False)
    empty = pc.fill_null(pc.equal(cells, ""), True)
    if pc.all(pc.or_(plain, empty)).as_py():  # the usual column: plain digits and blanks
        return pc.cast(pc.if_else(plain, cells, pa.nulls(len(cells), pa.string())), pa.int64()), []
    grouped = pc.fill_null(pc.match_substring_regex(cells, _GROUPED), False)
    digits = pc.if_else(grouped, pc.replace_substring(cells, ".", ""), cells)
    values = pc.cast(pc.if_else(pc.or_(plain, grouped), digits, pa.nulls(len(cells), pa.string())), pa.int64())
    others = pc.invert(pc.or_(pc.or_(plain, grouped), empty))
    found = []
    if pc.any(others).as_py():
        patched = values.to_pylist()
        for i in pc.indices_nonzero(others).to_pylist():
            raw = cells[i].as_py()
            try:
                reading = read_count(raw)
            except NotACount as exc:
                found.append((i, exc))
                continue
            patched[i] = reading.value
            if reading.note:
                found.append((i, (raw, reading)))
        values = pa.array(patched, pa.int64())
    return values, found


def read_xlsx(path: Path, settings: Settings) -> tuple[pa.Table, list[Finding]]:
    from extractors.spreadsheet import LayoutError, validation_rows

    try:
        rows, findings, _ = validation_rows(path, settings)
    except (LayoutError, OSError) as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from None
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA), findings


def _unreadable(name: str, why, row: dict, where: str) -> Finding:
    """The finding of a cell: unreadable, an approximation or words (its own check), or read from
    another form of number (a warning naming the reading)."""
    if isinstance(why, ApproximateCount):
        check, detail = CHECKS["schema.count_approximate"], f"{str(why.raw)!r}: {APPROXIMATIONS_VI[why.kind]}"
    elif isinstance(why, NotACount):
        check, detail = CHECKS["schema.count_unreadable"], str(why)
    else:
        check, detail = CHECKS["schema.count_reading"], reading_vi(*why)
    return Finding(check.id, check.severity, f"{where}: {check.title}: {FIGURE_LABELS[name]}: {detail}",
                   row.get("period_start"), row.get("period_end"), source_id=row["source_id"], unit_code=row["unit_code"],
                   field_code=row["field_code"], basis="self_reported", columns=[name], location=where)


def validate_files(paths: list[Path], settings: Settings, out: FindingsOut, *, chunk_bytes: int = CHUNK_BYTES,
                   chunk_rows: int | None = None, province: str | None = None,
                   convention: str | None = None) -> list[str]:
    """Every readable file validated as one stream into `out`; the errors of unreadable files.
    A file that turns out unreadable halfway (undecodable bytes) keeps the findings of its rows
    read before. `province` (a code of the reference data, or `all`) and `convention`
    (`calendar_quarter`, `decree_09_2019` or `any`) replace the configured province's, for files
    of another province."""
    from tthc.units import units_for_province

    unreadable = []
    with StreamingValidation(units_for_province(settings, province), [f["code"] for f in settings.fields],
                             convention or settings.period_convention, out, chunk_rows=chunk_rows) as validation:
        for path in paths:
            try:
                if not path.is_file():
                    raise UnreadableFile(f"{path}: không có tệp này")
                if path.suffix.lower() in (".xlsx", ".xlsm"):
                    chunks = iter([read_xlsx(path, settings)])
                else:
                    chunks = read_csv(path, chunk_bytes)
                for rows, findings in chunks:
                    validation.add(rows, findings)
            except UnreadableFile as exc:
                unreadable.append(str(exc))
        validation.finish()
    return unreadable


def main(paths: list[str], output_format: str, settings: Settings, max_per_check: int | None = None,
         province: str | None = None, convention: str | None = None) -> int:
    out = FindingsOut(output_format, sys.stdout, max_per_check)
    unreadable = validate_files([Path(p) for p in paths], settings, out, province=province, convention=convention)
    for error in unreadable:
        print(f"không đọc được: {error}", file=sys.stderr)
    out.close()
    if unreadable:
        return 2
    return 1 if out.any_critical else 0
