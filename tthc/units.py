"""Reporting units from the official administrative-unit lists, parsed as received.

Unit codes were reused by the 2025 reform, so a unit is identified by (unit_code, valid_from).
The date of the reform is read from the file names of the reference data, so that the next
official table can be dropped in the same way.
"""
from __future__ import annotations

import csv
import difflib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml
from text_unidecode import unidecode

from tthc.config import Settings, repo_path

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


# columns of a conversion row a province's correction may set (docs/reconciliation.md, "Correcting the
# official conversion")
CORRECTABLE = ("new_code", "new_name", "old_code", "old_name", "old_district_code", "old_province_code", "merge_note")
_LEVEL_PREFIX = re.compile(r"^(xa|phuong|thi tran|dac khu)\s+")
# Roman numerals of numbered wards (Phường IV); "vi" and "x" are also syllables, so they are left alone
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vii": "7", "viii": "8", "ix": "9"}
# letters Vietnamese place names are spelt either way (Sà/Xà Phìn, Quý/Quí, Ngọk/Ngọc, Kan/Can, Tr/Ch)
_SPELLING_VARIANTS = (("tr", "ch"), ("y", "i"), ("x", "s"), ("k", "c"), ("d", "r"), ("b", "p"))
SPELLING_SIMILARITY = 0.8


def name_key(name: str) -> str:
    """A unit's name without diacritics, case or repeated spaces: "Thị trấn Hoà Thuận" and "Thị trấn Hòa
    Thuận" are the same name."""
    return re.sub(r"\s+", " ", unidecode(_clean(name).replace("Đ", "D").replace("đ", "d")).lower()).strip()


def bare_name(name: str) -> str:
    """The name without its level ("Xã", "Phường", "Thị trấn"), so a re-levelled unit keeps its name."""
    return _LEVEL_PREFIX.sub("", name_key(name), count=1)


def spelling_key(name: str) -> str:
    """The bare name with the spellings that vary folded together (abbreviations, Roman numerals,
    apostrophes and spaces inside ethnic-minority names, interchangeable letters)."""
    key = re.sub(r"\bn\.?\s?t\b\.?", "nong truong", bare_name(name))
    key = " ".join(_ROMAN.get(word, word) for word in key.split())
    key = re.sub(r"[^a-z0-9]", "", key)
    for variant, common in _SPELLING_VARIANTS:
        key = key.replace(variant, common)
    return key


def listed_old_communes(settings: Settings) -> pd.DataFrame:
    """The pre-reform communes of the official list: code, name, district and province codes."""
    files = ReferenceFiles.find(settings.reference_data)
    old = _old_communes(files.old_communes)
    old = old[old["Mã PX"].map(_clean) != ""]
    return pd.DataFrame({"code": old["Mã PX"].map(_clean).str.zfill(5), "name": old["Phường Xã"].map(_clean),
                         "district_code": old["Mã QH"].map(_clean), "province_code": old["Mã TP"].map(_clean)})


def check_conversion(table: pd.DataFrame, listed: pd.DataFrame) -> pd.DataFrame:
    """Every conversion row whose old commune is not the pre-reform list's unit under that code.

    `kind`: `code_unknown` (the code is in no list), `level_changed` (same name, another level: Xã → Phường),
    `spelling_variant` (the same name spelt another way), `other_unit` (another unit's name: a renamed unit or
    a wrong code; `likely_code` is the code the list gives that name in the same old district, when it does).
    Rows without an old commune (a special zone formed from no commune: empty code) are not checked.
    """
    names = listed.drop_duplicates("code").set_index("code")["name"]
    by_district_name = {(r.district_code, bare_name(r.name)): r.code for r in listed.itertuples()}
    rows = []
    for rec in table.itertuples(index=False):
        if not rec.old_name or set(rec.old_code) == {"0"}:
            continue
        listed_name = names.get(rec.old_code)
        kind, likely = None, None
        if listed_name is None:
            kind = "code_unknown"
            likely = by_district_name.get((rec.old_district_code, bare_name(rec.old_name)))
        elif name_key(listed_name) == name_key(rec.old_name):
            continue
        elif bare_name(listed_name) == bare_name(rec.old_name):
            kind = "level_changed"
        elif (spelling_key(listed_name) == spelling_key(rec.old_name)
              or difflib.SequenceMatcher(None, spelling_key(listed_name), spelling_key(rec.old_name)).ratio()
              >= SPELLING_SIMILARITY):
            kind = "spelling_variant"
        else:
            kind = "other_unit"
            likely = by_district_name.get((rec.old_district_code, bare_name(rec.old_name)))
        rows.append({"source_row": rec.source_row, "kind": kind, "old_code": rec.old_code, "old_name": rec.old_name,
                     "listed_name": listed_name, "likely_code": likely, "new_code": rec.new_code,
                     "new_name": rec.new_name, "old_district_code": rec.old_district_code,
                     "old_province_code": rec.old_province_code, "new_province_code": rec.new_province_code})
    return pd.DataFrame(rows, columns=MISMATCH_COLUMNS)


MISMATCH_COLUMNS = ["source_row", "kind", "old_code", "old_name", "listed_name", "likely_code", "new_code", "new_name",
                    "old_district_code", "old_province_code", "new_province_code"]


@dataclass(frozen=True)
class Correction:
    """One line of a province's correction file: which official row, what it said, what it should say, why."""
    number: int  # 1-based position in the file's `corrections` list
    row: int  # line of the official conversion file
    was: dict
    set: dict
    reason: str


@dataclass(frozen=True)
class Corrections:
    path: Path
    version: str
    conversion_file: str | None
    lines: tuple[Correction, ...]
    problems: tuple[str, ...]  # lines refused, each naming the file, the line and what was expected


def read_corrections(settings: Settings) -> Corrections | None:
    """The province's corrections of the official conversion (province.yaml `conversion_corrections`,
    TTHC_CONVERSION_CORRECTIONS overrides), or None when it names none. A malformed line is refused
    with a problem naming it; the other lines still apply."""
    configured = os.environ.get("TTHC_CONVERSION_CORRECTIONS") or settings.province_doc.get("conversion_corrections")
    if not configured:
        return None
    path = repo_path(configured)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReferenceDataError(f"{path}: the conversion corrections cannot be read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") in (None, "") or not isinstance(doc.get("corrections"), list):
        raise ReferenceDataError(f"{path}: expected a mapping with `version` and a `corrections` list")
    lines, problems = [], []
    for number, entry in enumerate(doc["corrections"], start=1):
        where = f"{path.name} correction {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping with row, was, set and reason, got {entry!r}")
            continue
        row, was, new, reason = entry.get("row"), entry.get("was"), entry.get("set"), _clean(str(entry.get("reason") or ""))
        if not isinstance(row, int) or not isinstance(was, dict) or not was or not isinstance(new, dict) or not new:
            problems.append(f"{where}: expected `row` (a line number of the official file) and non-empty `was` and "
                            f"`set` mappings, got row={row!r}, was={was!r}, set={new!r}")
            continue
        unknown = sorted(set(map(str, was)) - set(CONVERSION_COLUMNS)) + sorted(set(map(str, new)) - set(CORRECTABLE))
        if unknown:
            problems.append(f"{where} (row {row}): unknown columns {unknown}; `set` may change {list(CORRECTABLE)}")
            continue
        if not reason:
            problems.append(f"{where} (row {row}): no `reason`: every correction says why the official row is wrong")
            continue
        lines.append(Correction(number, row, {k: _clean(str(v)) for k, v in was.items()},
                                {k: _clean(str(v)) for k, v in new.items()}, reason))
    return Corrections(path, str(doc["version"]), doc.get("conversion_file"), tuple(lines), tuple(problems))


def apply_corrections(table: pd.DataFrame, corrections: Corrections | None,
                      conversion_file: str) -> tuple[pd.DataFrame, list[Correction], list[str]]:
    """The table with the province's corrections applied, those applied, and the problems: a line whose
    `was` no longer matches its row (the official file changed) is not applied."""
    if corrections is None:
        return table, [], []
    problems = list(corrections.problems)
    if corrections.conversion_file and corrections.conversion_file != conversion_file:
        problems.append(f"{corrections.path.name} corrects {corrections.conversion_file}, but the official file is "
                        f"{conversion_file}: no correction applied; check each line against the new file")
        return table, [], problems
    table = table.copy()
    applied = []
    for line in corrections.lines:
        at = table.index[table["source_row"] == line.row]
        if len(at) != 1:
            problems.append(f"{corrections.path.name} correction {line.number}: {conversion_file} has no data row "
                            f"{line.row}: not applied")
            continue
        current = table.loc[at[0]]
        differs = {k: current[k] for k, v in line.was.items() if str(current[k]) != v}
        if differs:
            problems.append(f"{corrections.path.name} correction {line.number}: {conversion_file} row {line.row} says "
                            f"{differs}, the correction expects {{{', '.join(f'{k!r}: {line.was[k]!r}' for k in differs)}}}"
                            ": not applied (the official file changed?)")
            continue
        for column, value in line.set.items():
            table.loc[at[0], column] = value.zfill(5) if column in ("new_code", "old_code") else value
        if "merge_note" in line.set:
            table.loc[at[0], "merge_type"] = classify_merge(line.set["merge_note"])
        applied.append(line)
    return table, applied, problems


@dataclass(frozen=True)
class CheckedConversion:
    """The conversion as the pipeline uses it: the official rows with the province's corrections
    applied, and what checking them found."""
    table: pd.DataFrame
    mismatches: pd.DataFrame  # check_conversion of the corrected table
    applied: list[Correction]
    unreadable: list[str]  # official rows that could not be read
    refused: list[str]  # corrections not applied, each naming its line and why
    conversion_file: str
    corrections_file: str | None


def checked_conversion(settings: Settings) -> CheckedConversion:
    """Read the official conversion, apply the province's corrections, check every row against the
    pre-reform list."""
    files = ReferenceFiles.find(settings.reference_data)
    table, unreadable = conversion_table(settings)
    corrections = read_corrections(settings)
    table, applied, refused = apply_corrections(table, corrections, files.conversion.name)
    return CheckedConversion(table, check_conversion(table, listed_old_communes(settings)), applied,
                             unreadable, refused, files.conversion.name,
                             corrections.path.name if corrections else None)


def successors(conversion: pd.DataFrame, units: pd.DataFrame, reform: date) -> dict[str, list[str]]:
    """The units that took over each old commune and district's dossiers on the reform: an old commune's
    are the new communes of its conversion rows (several for a split); a district's are its seat's (the
    first commune the official list gives for the district: its thị trấn or central ward). Only units of
    `units` count, on either side of `reform`."""
    before = units_in_force(units, reform - timedelta(days=1))
    after = set(units_in_force(units, reform)["unit_code"])
    communes = before[before["level"] == "commune"]
    old_communes = set(communes["unit_code"])
    taken: dict[str, list[str]] = {}
    for old, new in zip(conversion["old_code"], conversion["new_code"]):
        if old in old_communes and new in after and new not in taken.get(old, []):
            taken.setdefault(old, []).append(new)
    districts = set(before.loc[before["level"] == "district", "unit_code"])
    for district, seat in communes.groupby("parent_code", sort=False)["unit_code"].first().items():
        if district in districts and seat in taken:
            taken[district] = taken[seat]
    return {old: sorted(new) for old, new in taken.items()}


def _split_code(text: str) -> tuple[str, str | None]:
    match = _BRACKET_CODE.match(_clean(text))
    return (match.group(1), match.group(2)) if match else (_clean(text), None)
