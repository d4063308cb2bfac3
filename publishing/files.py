"""Open-data files of one published vintage: Parquet and CSV of every publish view, a
Frictionless data package describing them, and SDMX-CSV of the unit-level figures."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xlsxwriter

from tthc import dictionary
from tthc.cells import XLSX_TEXT_OPTIONS, inert_table
from tthc.form import FACT_FIGURES, PUBLISHED_STATUSES, REPORTING_LEVELS, UNIT_LEVELS

SDMX_DATAFLOW = "VN_TTHC:BIEU06(1.0)"

_INTEGER = {"type": "integer", "constraints": {"minimum": 0}}
_TYPES = {"int64": _INTEGER, "Int64": _INTEGER, "int32": _INTEGER, "Int32": _INTEGER,
          "float64": {"type": "number"}, "bool": {"type": "boolean"}, "object": {"type": "string"},
          "str": {"type": "string"}, "string": {"type": "string"}}
def description(name: str, relation: str | None = None) -> str:
    """A published column's label and meaning, from the data dictionary (warehouse/contracts/dictionary.yaml)."""
    return dictionary.column_comment(name, relation) or ""

# name → (title, primary key, foreign keys, enums)
TABLES = {
    "units": ("Đơn vị có số liệu công bố", ["unit_code"], False,
              {"unit_level": list(UNIT_LEVELS)}),
    "bieu06_by_unit": ("Biểu 06 theo đơn vị", ["unit_code", "period_start", "period_end"], True,
                       {"unit_level": list(REPORTING_LEVELS), "quality_status": list(PUBLISHED_STATUSES)}),
    "bieu06_by_province": ("Biểu 06 toàn tỉnh", ["province_code", "period_start", "period_end"], False, {}),
    "bieu06_by_field": ("Biểu 06 theo lĩnh vực (toàn tỉnh)", ["field_code", "period_start", "period_end"], False, {}),
    "indicators_766": ("Chỉ số theo Quyết định 766/QĐ-TTg",
                       ["unit_code", "period_start", "period_end", "indicator"], True, {}),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _field(name: str, dtype: str, required: bool, enum: list | None) -> dict:
    kind = dict(_TYPES.get(dtype, {"type": "string"}))
    if name in ("period_start", "period_end"):
        kind = {"type": "date"}
    if name in ("value",):
        kind = {"type": "number", "constraints": {"minimum": 0, "maximum": 1}}
    if name == "vintage":
        kind = {"type": "integer", "constraints": {"minimum": 1}}
    constraints = dict(kind.pop("constraints", {}))
    if required:
        constraints["required"] = True
    if enum:
        constraints["enum"] = enum
    field = {"name": name, **kind}
    if constraints:
        field["constraints"] = constraints
    if description(name):
        field["title"] = dictionary.column(name)["label"]
        field["description"] = description(name)
    return field


# columns Excel must keep as text: codes with leading zeros (01399), never numbers
TEXT_COLUMNS = ("unit_code", "province_code", "field_code", "parent_code")
# columns that are shares from 0 to 1, shown as percentages in the workbook
SHARE_COLUMNS = ("value",)
UTF8_BOM = b"\xef\xbb\xbf"


def write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    """Parquet for programs; CSV in UTF-8 with a byte-order mark, so that Excel reads Vietnamese
    right; and a workbook per table for Excel users, whose CSV import drops codes' leading zeros
    and splits on the regional list separator (";" on Vietnamese settings)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / f"{name}.parquet")
    path = folder / f"{name}.csv"
    with path.open("wb") as out:
        out.write(UTF8_BOM)
        pacsv.write_csv(inert_table(table), out)
    write_table_workbook(frame, folder / f"{name}.xlsx", name)


def write_table_workbook(frame: pd.DataFrame, path: Path, name: str) -> Path:
    """One sheet: the column names, then the rows; codes as text, dates as dates, shares as
    percentages; a second sheet says what each column means."""
    book = xlsxwriter.Workbook(str(path), {**XLSX_TEXT_OPTIONS, "remove_timezone": True})
    sheet, notes = book.add_worksheet(name[:31]), book.add_worksheet("Giải thích")
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    share = book.add_format({"num_format": "0.0%"})
    for c, column in enumerate(frame.columns):
        sheet.write_string(0, c, column, bold)
        values = frame[column].tolist()
        for r, value in enumerate(values, start=1):
            if value is None or value is pd.NA or (isinstance(value, float) and value != value):
                continue
            if column in TEXT_COLUMNS or isinstance(value, str):
                sheet.write_string(r, c, str(value))
            elif column in SHARE_COLUMNS:
                sheet.write_number(r, c, float(value), share)
            elif hasattr(value, "year"):
                sheet.write_datetime(r, c, pd.Timestamp(value).to_pydatetime(), date)
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            else:
                sheet.write_number(r, c, value)
        sheet.set_column(c, c, max(10, min(40, len(column) + 2)))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(1, len(frame)), max(0, len(frame.columns) - 1))
    notes.write_row(0, 0, ["Cột", "Ý nghĩa"], bold)
    for r, column in enumerate(frame.columns, start=1):
        notes.write_string(r, 0, column)
        notes.write_string(r, 1, description(column))
    notes.set_column(0, 0, 28)
    notes.set_column(1, 1, 100)
    book.close()
    return path


def write_datapackage(folder: Path, tables: dict[str, pd.DataFrame], *, name: str, title: str,
                      period: dict, vintage: int, content_sha256: str | None = None) -> Path:
    resources = []
    for resource, frame in tables.items():
        resource_title, key, linked, enums = TABLES[resource]
        path = folder / f"{resource}.csv"
        schema = {
            "fields": [_field(c, str(frame[c].dtype), c in key, enums.get(c)) for c in frame.columns],
            "primaryKey": key,
        }
        if linked and "units" in tables:
            schema["foreignKeys"] = [{"fields": "unit_code", "reference": {"resource": "units", "fields": "unit_code"}}]
        resources.append({
            "name": resource, "title": resource_title, "path": path.name, "format": "csv", "mediatype": "text/csv",
            "encoding": "utf-8-sig", "profile": "tabular-data-resource", "schema": schema,
            "hash": f"sha256:{_sha256(path)}", "bytes": path.stat().st_size,
            "rows": len(frame),
        })
    descriptor = {
        "profile": "tabular-data-package", "name": name, "title": title, "version": f"{vintage}.0.0",
        "description": f"Số liệu giải quyết TTHC kỳ {period['label']} ({period['start']} – {period['end']}), "
                       f"lần công bố {vintage}.",
        "licenses": [{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"}],
        "resources": resources,
    }
    if content_sha256:  # the warehouse's hash of the vintage's unit figures: files and warehouse checked against it
        descriptor["tthc:content_sha256"] = content_sha256
    path = folder / "datapackage.json"
    path.write_text(json.dumps(descriptor, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_sdmx_csv(frame: pd.DataFrame, path: Path, period_label: str) -> Path:
    """SDMX-CSV (one observation a row) of the unit-level figures, for statistical systems."""
    long = frame.melt(id_vars=["unit_code", "quality_status"], value_vars=list(FACT_FIGURES),
                      var_name="INDICATOR", value_name="OBS_VALUE")
    long = long.dropna(subset=["OBS_VALUE"])
    out = pd.DataFrame({
        "DATAFLOW": SDMX_DATAFLOW,
        "REF_AREA": long["unit_code"],
        "INDICATOR": long["INDICATOR"].str.upper(),
        "TIME_PERIOD": period_label,
        "OBS_VALUE": long["OBS_VALUE"].astype("int64"),
        "UNIT_MEASURE": "DOSSIER",
        "OBS_STATUS": long["quality_status"].map({"ok": "A", "warning": "E"}),
    }).sort_values(["REF_AREA", "INDICATOR"])
    out.to_csv(path, index=False, encoding="utf-8")
    return path
