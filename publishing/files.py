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

from tthc.cells import inert_table
from tthc.form import FACT_FIGURES, FORM_COLUMN_NUMBER, PUBLISHED_STATUSES, REPORTING_LEVELS, UNIT_LEVELS

SDMX_DATAFLOW = "VN_TTHC:BIEU06(1.0)"

_INTEGER = {"type": "integer", "constraints": {"minimum": 0}}
_TYPES = {"int64": _INTEGER, "Int64": _INTEGER, "int32": _INTEGER, "Int32": _INTEGER,
          "float64": {"type": "number"}, "bool": {"type": "boolean"}, "object": {"type": "string"},
          "str": {"type": "string"}, "string": {"type": "string"}}
DESCRIPTIONS = {
    "unit_code": "Mã đơn vị: mã định danh của sở, ban, ngành hoặc mã ĐVHC của huyện, xã",
    "period_start": "Ngày đầu kỳ báo cáo", "period_end": "Ngày cuối kỳ báo cáo (tính cả ngày này)",
    "vintage": "Lần công bố số liệu của kỳ", "quality_status": "ok hoặc warning (công bố kèm cảnh báo)",
    **{f: f"Cột ({n}) Biểu 06" for f, n in FORM_COLUMN_NUMBER.items()},
    "returned_withdrawn": "Số hồ sơ trả lại, rút, dừng xử lý",
    "pending_paused": "Số hồ sơ đang chờ bổ sung, nộp phí hoặc tạm dừng (trong số đang giải quyết); "
                      "chỉ đơn vị có dữ liệu hồ sơ, để trống với đơn vị tự báo cáo",
}

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
    if name in DESCRIPTIONS:
        field["description"] = DESCRIPTIONS[name]
    return field


def write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / f"{name}.parquet")
    pacsv.write_csv(inert_table(table), folder / f"{name}.csv")


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
            "encoding": "utf-8", "profile": "tabular-data-resource", "schema": schema,
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
