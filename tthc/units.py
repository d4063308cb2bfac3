"""Reporting units from the official administrative-unit lists, parsed as received.

Unit codes were reused by the 2025 reform, so a unit is identified by (unit_code, valid_from).
The date of the reform is read from the file names of the reference data, so that the next
official table can be dropped in the same way.
"""
from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd

from tthc.config import Settings

BEGINNING = date(1900, 1, 1)  # start of validity not known from the lists
OPEN_END = date(9999, 12, 31)

UNIT_COLUMNS = ["unit_code", "unit_name", "level", "parent_code", "province_code", "valid_from", "valid_to"]
CONVERSION_COLUMNS = [
    "new_code", "new_name", "new_province_code", "old_code", "old_name",
    "old_district_code", "old_province_code", "merge_type", "merge_note", "source_row",
]
_BRACKET_CODE = re.compile(r"^(.*?)\s*\((\d+)\)\s*$")


class ReferenceDataError(ValueError):
    pass


@dataclass(frozen=True)
class ReferenceFiles:
    old_communes: Path
    new_units: Path
    conversion: Path
    reform_date: date

    @classmethod
    def find(cls, folder: Path) -> "ReferenceFiles":
        def one(pattern: str) -> Path:
            matches = sorted(folder.glob(pattern))
            if not matches:
                raise ReferenceDataError(f"{folder}: no file matching {pattern} (the official unit lists)")
            return matches[-1]

        old = one("communes_before_*.csv")
        reform = date.fromisoformat(old.stem.removeprefix("communes_before_"))
        return cls(old, one("units_from_*.json"), one("conversion_*_new_from_old.csv"), reform)


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text or "")).strip()


def classify_merge(note: str) -> str:
    """Merge type of an old commune into a new one, from the conversion table's note."""
    n = _clean(note).lower().replace("nhâp", "nhập")
    if not n:
        return "unknown"
    if "một phần diện tích" in n:
        return "part_area"
    if "một phần" in n:
        return "part"
    if any(k in n for k in ("toàn bộ", "giữ nguyên", "đổi tên", "đổi loại hình")):
        return "whole"
    return "unknown"


@lru_cache(maxsize=4)
def _old_communes(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    expected = ["Tỉnh Thành Phố", "Mã TP", "Quận Huyện", "Mã QH", "Phường Xã", "Mã PX"]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ReferenceDataError(f"{path}: missing columns {missing}; found {list(frame.columns)}")
    return frame


@lru_cache(maxsize=4)
def _new_units(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


ALL_PROVINCES = "all"


def units_for_province(settings: Settings, province_code: str | None = None) -> pd.DataFrame:
    """Unit dimension rows (both unit systems) for the configured province, or for another one of
    the reference data (`province_code`; `all`: every province), as `tthc validate --province`
    reads files of other provinces: then only its territorial units (departments are configured
    for the province of the configuration)."""
    files = ReferenceFiles.find(settings.reference_data)
    own = province_code in (None, settings.province_code)
    national = settings.national or province_code == ALL_PROVINCES
    code = settings.province_code if own or national else str(province_code).zfill(2)
    old_codes = ([str(c).zfill(2) for c in settings.province.get("codes_before_reform", [code])] if own
                 else [code])
    last_old_day = files.reform_date - timedelta(days=1)
    rows: list[dict] = []

    old = _old_communes(files.old_communes)
    if not national:
        old = old[old["Mã TP"].isin(old_codes)]
    for (pcode, pname), _ in old.groupby(["Mã TP", "Tỉnh Thành Phố"]):
        rows.append(_unit(pcode, pname, "province", None, pcode, BEGINNING, last_old_day))
    for (dcode, dname, pcode), _ in old.groupby(["Mã QH", "Quận Huyện", "Mã TP"]):
        rows.append(_unit(dcode, dname, "district", pcode, pcode, BEGINNING, last_old_day))
    for rec in old.itertuples(index=False):
        if not _clean(rec[5]):
            continue  # a district without communes (island districts) has a row with no commune code
        rows.append(_unit(rec[5], rec[4], "commune", rec[3], rec[1], BEGINNING, last_old_day))

    for province in _new_units(files.new_units):
        pcode = str(province["code"]).zfill(2)
        if pcode != code and not national:
            continue
        rows.append(_unit(pcode, province["name"], "province", None, pcode, files.reform_date, OPEN_END))
        for ward in province.get("wards", []):
            rows.append(_unit(str(ward["code"]).zfill(5), ward["name"], "commune", pcode, pcode, files.reform_date, OPEN_END))

    for dept in (settings.departments if own else []):
        rows.append(_unit(dept["code"], dept["name"], "department", code, code, BEGINNING, OPEN_END))
    if national and own:  # the same departments in every province of the new system, under the province's suffix
        for province in _new_units(files.new_units):
            pcode = str(province["code"]).zfill(2)
            for dept in settings.departments_per_province:
                dcode = national_department_code(dept["code"], pcode)
                rows.append(_unit(dcode, f"{dept['name']} {province['name']}", "department", pcode, pcode,
                                  BEGINNING, OPEN_END))
    frame = pd.DataFrame(rows, columns=UNIT_COLUMNS)
    if frame.empty:
        raise ReferenceDataError(f"{settings.reference_data}: no units for province {code}")
    return frame


def national_department_code(number: str, province_code: str) -> str:
    """An illustrative electronic identifier of a province's department: `000.00.<number>.H<province>`."""
    return f"000.00.{number}.H{province_code}"


def _unit(code, name, level, parent, province, valid_from, valid_to) -> dict:
    return {
        "unit_code": code, "unit_name": _clean(name), "level": level, "parent_code": parent,
        "province_code": province, "valid_from": valid_from, "valid_to": valid_to,
    }


def units_in_force(units: pd.DataFrame, on: date) -> pd.DataFrame:
    """Units valid on a date: the unit system in force at a period's end."""
    return units[(units["valid_from"] <= on) & (units["valid_to"] >= on)].reset_index(drop=True)


def conversion_table(settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """The official old → new commune conversion, with its merge type, and the problems found
    in the file (rows that could not be read are reported, not fatal)."""
    files = ReferenceFiles.find(settings.reference_data)
    problems: list[str] = []
    rows: list[dict] = []
    with open(files.conversion, encoding="utf-8", newline="") as fh:
        for line_no, rec in enumerate(csv.reader(fh), start=1):
            if line_no <= 2 or not any(_clean(c) for c in rec):
                continue
            if len(rec) < 8 or not _clean(rec[2]):
                if len(rec) >= 1 and _clean(rec[0]) and not any(_clean(c) for c in rec[1:]):
                    continue  # province banner row
                problems.append(f"{files.conversion.name} row {line_no}: expected a new commune code in column 3, got {rec[:3]}")
                continue
            _, new_province = _split_code(rec[0])
            _, old_district = _split_code(rec[6])
            _, old_province = _split_code(rec[7])
            rows.append({
                "new_code": _clean(rec[2]).zfill(5), "new_name": _clean(rec[1]),
                "new_province_code": (new_province or "").zfill(2) or None,
                "old_code": _clean(rec[4]).zfill(5), "old_name": _clean(rec[3]),
                "old_district_code": (old_district or "").zfill(3) or None,
                "old_province_code": (old_province or "").zfill(2) or None,
                "merge_type": classify_merge(rec[5]), "merge_note": _clean(rec[5]),
                "source_row": line_no,
            })
    frame = pd.DataFrame(rows, columns=CONVERSION_COLUMNS)
    return frame, problems


def _split_code(text: str) -> tuple[str, str | None]:
    match = _BRACKET_CODE.match(_clean(text))
    return (match.group(1), match.group(2)) if match else (_clean(text), None)
