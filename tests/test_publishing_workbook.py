"""The Biểu 06 workbook shows the published figures, and its totals are formulas whose cached
values and recomputed values both equal the sums of those figures."""
from __future__ import annotations

import re
from datetime import date

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import column_index_from_string, get_column_letter, range_boundaries

from publishing.workbook import (FIRST_DATA_ROW, GRAND_TOTAL_LABEL, NUMBERS_ROW, UNIT_OF_MEASURE,
                                 write_bieu06_workbook)
from tthc.form import FIGURES, SUM_IDENTITIES

FIRST_FIGURE = 3  # openpyxl column of the first figure (C)
COLUMN = {name: FIRST_FIGURE + i for i, name in enumerate(FIGURES)}
TOTAL_COLUMNS = ("received_total", "resolved_total", "pending_total")


def figures(online, direct, carried, early, on_time, late, within_due, overdue, returned=None,
            resolved_total=None):
    received = online + direct + carried
    resolved = early + on_time + late if resolved_total is None else resolved_total
    return {"received_total": received, "received_online": online, "received_direct_postal": direct,
            "carried_over": carried, "resolved_total": resolved, "resolved_early": early,
            "resolved_on_time": on_time, "resolved_late": late, "pending_total": within_due + overdue,
            "pending_within_due": within_due, "pending_overdue": overdue, "returned_withdrawn": returned}


def unit(level, code, name, **kwargs):
    return {"unit_level": level, "field_code": code, "field_name": name, **figures(**kwargs)}


@pytest.fixture
def rows() -> pd.DataFrame:
    frame = pd.DataFrame([
        unit("department", "TP", "Tư pháp", online=120, direct=30, carried=10, early=100, on_time=20, late=5,
             within_due=30, overdue=3, returned=2),
        # two departments in the same field: summed into one row of the form
        unit("department", "DD", "Đất đai", online=1500, direct=700, carried=400, early=1200, on_time=900,
             late=150, within_due=300, overdue=40, returned=10),
        unit("department", "DD", "Đất đai", online=5, direct=6, carried=7, early=8, on_time=1, late=0,
             within_due=2, overdue=1, returned=None),
        unit("district", "DD", "Đất đai", online=800, direct=900, carried=250, early=1000, on_time=600,
             late=120, within_due=200, overdue=30, returned=0),
        # a typing error the validation let through with a warning: 1,000 short of its parts
        unit("district", "HT", "Hộ tịch", online=60, direct=1400, carried=20, early=1300, on_time=100, late=2,
             within_due=70, overdue=0, returned=1, resolved_total=402),
        unit("commune", "HT", "Hộ tịch", online=2000, direct=5000, carried=150, early=6000, on_time=700,
             late=80, within_due=350, overdue=20),
        unit("commune", "CT", "Chứng thực", online=0, direct=3000, carried=0, early=2990, on_time=10, late=0,
             within_due=0, overdue=0),
    ])
    return frame.astype({f: "Int64" for f in FIGURES})


def expected_fields(rows: pd.DataFrame) -> dict[tuple[str, str], dict[str, int | None]]:
    out: dict[tuple[str, str], dict[str, int | None]] = {}
    for record in rows.to_dict("records"):
        slot = out.setdefault((record["unit_level"], record["field_name"]), {f: None for f in FIGURES})
        for f in FIGURES:
            if not pd.isna(record[f]):
                slot[f] = (slot[f] or 0) + int(record[f])
    return out


def write(tmp_path, rows, **overrides):
    arguments = dict(province_name="Tỉnh Cao Bằng", period_start=date(2025, 4, 1), period_end=date(2025, 6, 30),
                     period_label="Quý II năm 2025", rows=rows, vintage=3)
    arguments.update(overrides)
    path = write_bieu06_workbook(tmp_path / "bieu06.xlsx", **arguments)
    values = openpyxl.load_workbook(path, data_only=True).active
    formulas = openpyxl.load_workbook(path, data_only=False).active
    return path, values, formulas


def data_rows(sheet) -> dict[str, list[int]]:
    """Row numbers of the data area by the label in column B (a field name appears once per level)."""
    found: dict[str, list[int]] = {}
    for r in range(FIRST_DATA_ROW + 1, sheet.max_row + 1):
        label = sheet.cell(r, 2).value
        if label and sheet.cell(r, 1).value is not None:
            found.setdefault(label, []).append(r)
    return found


def evaluate(sheet, cell: str) -> int:
    """Recompute a cell from the formulas alone: SUM over ranges and '+' of cells, as written."""
    value = sheet[cell].value
    if value is None:
        return 0
    if not isinstance(value, str):
        return value
    assert value.startswith("="), value
    total = 0
    for term in value[1:].split("+"):
        match = re.fullmatch(r"SUM\(([A-Z]+\d+:[A-Z]+\d+)\)", term)
        if match:
            min_col, min_row, max_col, max_row = range_boundaries(match.group(1))
            total += sum(evaluate(sheet, f"{get_column_letter(c)}{r}")
                         for r in range(min_row, max_row + 1) for c in range(min_col, max_col + 1))
        else:
            assert re.fullmatch(r"[A-Z]+\d+", term), term
            total += evaluate(sheet, term)
    return total


def level_blocks(sheet) -> list[tuple[int, str, list[int]]]:
    """(row, caption, field rows) of every level, read from the STT column's Roman numerals."""
    blocks: list[tuple[int, str, list[int]]] = []
    for r in range(FIRST_DATA_ROW + 2, sheet.max_row + 1):
        number = sheet.cell(r, 1).value
        if number in ("I", "II", "III", "IV"):
            blocks.append((r, sheet.cell(r, 2).value, []))
        elif isinstance(number, str) and number.isdigit():
            blocks[-1][2].append(r)
    return blocks


def test_header_texts_column_numbers_and_period_line(tmp_path, rows):
    _, values, _ = write(tmp_path, rows)
    texts = [values.cell(r, c).value for r in range(1, NUMBERS_ROW + 1) for c in range(1, 16)]
    texts = [t for t in texts if t is not None]
    for text in ("TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", "Từ ngày 01/04/2025 đến ngày 30/06/2025",
                 UNIT_OF_MEASURE, "Kỳ báo cáo: Quý II năm 2025", "Đơn vị báo cáo: Ủy ban nhân dân tỉnh Cao Bằng",
                 "STT", "Số hồ sơ nhận giải quyết", "Trong kỳ", "Trực tuyến", "Trực tiếp, dịch vụ bưu chính",
                 "Từ kỳ trước", "Số hồ sơ đã giải quyết", "Trước hạn", "Đúng hạn", "Số hồ sơ đang giải quyết",
                 "Trong hạn", "Trả lại, rút, dừng xử lý"):
        assert text in texts, text
    assert texts.count("Tổng số") == 3 and texts.count("Quá hạn") == 2
    numbers = [values.cell(NUMBERS_ROW + 1, c).value for c in range(1, 15)]
    assert numbers == [f"({n})" for n in range(1, 15)]

    # group headers span their columns, as on the printed form
    merged = {str(m) for m in values.merged_cells.ranges}
    header = NUMBERS_ROW - 2
    for first, last in (("C", "F"), ("G", "J"), ("K", "M")):
        assert f"{first}{header}:{last}{header}" in merged
    assert f"D{header + 1}:E{header + 1}" in merged
    assert f"A{header}:A{header + 2}" in merged and f"C{header + 1}:C{header + 2}" in merged
    assert values.freeze_panes == f"C{FIRST_DATA_ROW + 1}"
    assert values.page_setup.orientation == "landscape" and values.page_setup.paperSize == 9


def test_figure_cells_equal_the_input_figures(tmp_path, rows):
    _, values, _ = write(tmp_path, rows)
    blocks = level_blocks(values)
    assert [caption for _, caption, _ in blocks] == ["Cấp tỉnh (sở, ban, ngành)", "Cấp huyện", "Cấp xã"]
    assert [values.cell(r, 1).value for r, _, _ in blocks] == ["I", "II", "III"]
    level_of = dict(zip(("Cấp tỉnh (sở, ban, ngành)", "Cấp huyện", "Cấp xã"), ("department", "district", "commune")))
    expected = expected_fields(rows)
    seen = set()
    for _, caption, field_rows in blocks:
        for r in field_rows:
            key = (level_of[caption], values.cell(r, 2).value)
            seen.add(key)
            for f in FIGURES:
                assert values.cell(r, COLUMN[f]).value == expected[key][f], (key, f)
    assert seen == set(expected)


def test_subtotals_and_grand_total_are_formulas_with_the_sums(tmp_path, rows):
    _, values, formulas = write(tmp_path, rows)
    expected = expected_fields(rows)
    blocks = level_blocks(values)
    grand_row = FIRST_DATA_ROW + 1
    assert values.cell(grand_row, 2).value == GRAND_TOTAL_LABEL
    for f in FIGURES:
        column = get_column_letter(COLUMN[f])
        level_sums = []
        for r, caption, field_rows in blocks:
            level = {"Cấp tỉnh (sở, ban, ngành)": "department", "Cấp huyện": "district", "Cấp xã": "commune"}[caption]
            parts = [v[f] for (lv, _), v in expected.items() if lv == level and v[f] is not None]
            want = sum(parts) if parts else None
            level_sums.append(want)
            cell = f"{column}{r}"
            assert values[cell].value == want, (caption, f)
            if want is None:
                assert formulas[cell].value is None
                continue
            assert formulas[cell].value == f"=SUM({column}{field_rows[0]}:{column}{field_rows[-1]})"
            assert evaluate(formulas, cell) == want
        present = [s for s in level_sums if s is not None]
        grand = f"{column}{grand_row}"
        assert values[grand].value == (sum(present) if present else None), f
        assert formulas[grand].value == "=" + "+".join(f"{column}{r}" for r, _, _ in blocks)
        assert evaluate(formulas, grand) == sum(present)
    # the commune level reported no returned/withdrawn figure: empty, not 0
    commune_row = blocks[2][0]
    assert values.cell(commune_row, COLUMN["returned_withdrawn"]).value is None


def test_row_totals_are_formulas_of_their_parts_unless_the_unit_reported_otherwise(tmp_path, rows):
    _, values, formulas = write(tmp_path, rows)
    checked = 0
    for _, caption, field_rows in level_blocks(values):
        for r in field_rows:
            for total in TOTAL_COLUMNS:
                cell = formulas.cell(r, COLUMN[total])
                parts = [values.cell(r, COLUMN[p]).value for p in SUM_IDENTITIES[total]]
                if (caption, values.cell(r, 2).value, total) == ("Cấp huyện", "Hộ tịch", "resolved_total"):
                    # the reported 402 stays, flagged, instead of a formula that would change it
                    assert cell.value == 402 and sum(parts) == 1402 and cell.comment is not None
                    continue
                assert cell.value == "=" + "+".join(
                    f"{get_column_letter(COLUMN[p])}{r}" for p in SUM_IDENTITIES[total])
                assert values.cell(r, COLUMN[total]).value == sum(parts)
                checked += 1
    assert checked == 7 * 3 - 1 - 3  # two department rows are one field; one row reported otherwise


def test_level_without_districts_and_an_empty_period(tmp_path, rows):
    after_reform = rows[rows["unit_level"] != "district"]
    _, values, formulas = write(tmp_path, after_reform)
    blocks = level_blocks(values)
    assert [(values.cell(r, 1).value, caption) for r, caption, _ in blocks] == [
        ("I", "Cấp tỉnh (sở, ban, ngành)"), ("II", "Cấp xã")]
    column = get_column_letter(COLUMN["received_total"])
    assert values[f"{column}{FIRST_DATA_ROW + 1}"].value == int(after_reform["received_total"].sum())

    empty = rows.iloc[0:0]
    _, values, formulas = write(tmp_path, empty)
    assert level_blocks(values) == []
    assert values.cell(FIRST_DATA_ROW + 1, 2).value == GRAND_TOTAL_LABEL
    assert values.cell(FIRST_DATA_ROW + 1, column_index_from_string(column)).value is None


def test_rows_must_name_a_known_level_and_every_figure(tmp_path, rows):
    with pytest.raises(ValueError, match="unit levels"):
        write(tmp_path, rows.assign(unit_level="province"))
    with pytest.raises(ValueError, match="returned_withdrawn"):
        write(tmp_path, rows.drop(columns="returned_withdrawn"))


def test_a_figure_beside_the_form_adds_up_only_where_every_unit_gives_it(tmp_path, rows):
    """Paused dossiers (15) are given by units with dossier records only: a field, level or total
    with a unit that does not give them stays empty rather than showing a part as the whole."""
    rows = rows.assign(pending_paused=pd.array([3, 4, None, 2, 1, None, None], dtype="Int64"))
    _, values, _ = write(tmp_path, rows)
    column = FIRST_FIGURE + len(FIGURES)
    assert values.cell(FIRST_DATA_ROW, column).value == "(15)"
    department, district, commune = level_blocks(values)
    by_label = {values.cell(r, 2).value: values.cell(r, column).value for r in department[2]}
    assert by_label == {"Tư pháp": 3, "Đất đai": None}  # one of the two departments in Đất đai gives none
    assert values.cell(department[0], column).value is None
    assert values.cell(district[0], column).value == 3
    assert values.cell(commune[0], column).value is None
    assert values.cell(FIRST_DATA_ROW + 1, column).value is None


def test_add_up_sums_what_is_given_and_a_figure_beside_the_form_only_when_all_is():
    from tthc.form import add_up

    assert add_up("returned_withdrawn", [2, None, float("nan"), pd.NA, 5]) == 7
    assert add_up("returned_withdrawn", [None, pd.NA]) is None and add_up("returned_withdrawn", []) is None
    assert add_up("pending_paused", [2, 5]) == 7 and add_up("pending_paused", pd.Series([2, 5])) == 7
    assert add_up("pending_paused", [2, None]) is None
    assert add_up("pending_paused", pd.array([2, None], dtype="Int64")) is None
