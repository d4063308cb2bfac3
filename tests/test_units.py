from datetime import date

import pytest
import yaml

from tthc.config import load_settings
from tthc.units import (check_conversion, checked_conversion, classify_merge, conversion_table, listed_old_communes,
                        name_key, spelling_key, units_for_province, units_in_force)


def test_both_unit_systems_of_the_province():
    units = units_for_province(load_settings())
    before = units_in_force(units, date(2025, 6, 30))
    after = units_in_force(units, date(2025, 7, 1))
    count = lambda frame, level: int((frame["level"] == level).sum())  # noqa: E731
    assert (count(before, "commune"), count(before, "district"), count(before, "department")) == (161, 10, 17)
    assert (count(after, "commune"), count(after, "district"), count(after, "department")) == (56, 0, 17)


def test_a_reused_code_names_two_units():
    units = units_for_province(load_settings())
    rows = units[units["unit_code"] == "01273"].sort_values("valid_from")
    assert rows["unit_name"].tolist() == ["Phường Hợp Giang", "Phường Thục Phán"]


def test_conversion_table_parsed_as_received():
    table, problems = conversion_table(load_settings())
    assert len(table) > 10_000 and problems == []
    assert {"whole", "part", "part_area"} <= set(table["merge_type"])
    splits = table.groupby("old_code")["new_code"].nunique()
    assert (splits > 1).sum() > 300  # old communes split across several new ones stay visible
    row = table[(table["old_code"] == "01267")].iloc[0]
    assert (row["new_code"], row["old_district_code"], row["old_province_code"]) == ("01273", "040", "04")


def test_merge_notes_with_the_files_quirks():
    assert classify_merge("Nhập một  phần") == "part"
    assert classify_merge("Nhập một phần diện tích, toàn bộ dân số") == "part_area"
    assert classify_merge("Nhâp một phần diện tích") == "part_area"
    assert classify_merge("Giữ nguyên ") == "whole"
    assert classify_merge("") == "unknown"


# ---------------------------------------------------------------- the official lists checked when loaded


@pytest.fixture(scope="module")
def official_mismatches():
    settings = load_settings()
    table, _ = conversion_table(settings)
    return check_conversion(table, listed_old_communes(settings)).set_index("source_row")


def test_conversion_rows_are_checked_against_the_pre_reform_list(official_mismatches):
    kinds = official_mismatches["kind"].value_counts().to_dict()
    assert kinds == {"spelling_variant": 93, "other_unit": 12, "code_unknown": 11, "level_changed": 10}
    my_hung = official_mismatches.loc[912]  # Cao Bằng: Xã Mỹ Hưng under Xã Hồng Quang's code
    assert (my_hung["kind"], my_hung["old_code"], my_hung["listed_name"], my_hung["likely_code"]) == \
        ("other_unit", "01615", "Xã Hồng Quang", "01651")
    assert official_mismatches.loc[1005, "kind"] == "spelling_variant"  # Sà Phìn / Xà Phìn
    assert official_mismatches.loc[1548, "kind"] == "level_changed"  # Phường / Xã Đông Sang
    assert official_mismatches.loc[8560, "kind"] == "code_unknown"


def test_vietnamese_spellings_of_one_name_are_told_apart_from_another_unit():
    assert name_key("Thị trấn Hoà Thuận") == name_key("Thị trấn Hòa Thuận")
    assert spelling_key("Xã Sà Phìn") == spelling_key("Xã Xà Phìn")
    assert spelling_key("Xã Quý Quân") == spelling_key("Xã Quí Quân")
    assert spelling_key("Thị trấn Nông trường Liên Sơn") == spelling_key("Thị trấn NT Liên Sơn")
    assert spelling_key("Phường IV") == spelling_key("Phường 4")
    assert spelling_key("Xã Ô Long Vĩ") == spelling_key("Xã Ô Long Vỹ")
    assert spelling_key("Xã Mỹ Hưng") != spelling_key("Xã Hồng Quang")


def _cao_bang(table):
    return table[table["old_province_code"] == "04"]


def test_the_provinces_correction_file_gives_my_hung_its_successor_and_ends_the_false_split():
    settings = load_settings()
    checked = checked_conversion(settings)
    assert [(c.row, c.set) for c in checked.applied] == [(912, {"old_code": "01651"})]
    assert checked.refused == [] and checked.corrections_file == "conversion_corrections.yaml"
    mine = _cao_bang(checked.table)
    assert mine["old_code"].nunique() == 161 and mine.groupby("old_code")["new_code"].nunique().max() == 1
    assert _cao_bang(checked.mismatches).empty
    old_of = mine.groupby("new_code")["old_code"].apply(sorted).to_dict()
    assert old_of["01636"] == ["01615", "01630", "01636"]  # Xã Bế Văn Đàn
    assert old_of["01648"] == ["01627", "01639", "01648", "01651"]  # Xã Phục Hòa


def test_without_corrections_my_hung_has_no_successor_and_hong_quang_looks_split(monkeypatch):
    monkeypatch.setenv("TTHC_CONVERSION_CORRECTIONS", "")
    settings = load_settings()
    settings.province_doc.pop("conversion_corrections")
    checked = checked_conversion(settings)
    mine = _cao_bang(checked.table)
    assert checked.applied == [] and "01651" not in set(mine["old_code"])
    assert sorted(mine[mine["old_code"] == "01615"]["new_code"]) == ["01636", "01648"]
    assert _cao_bang(checked.mismatches)["source_row"].tolist() == [912]


def test_a_correction_line_that_is_malformed_or_no_longer_matches_is_refused_by_line(tmp_path, monkeypatch):
    path = tmp_path / "corrections.yaml"
    path.write_text(yaml.safe_dump({"version": "t1", "corrections": [
        {"row": 912, "was": {"old_code": "01615"}, "set": {"old_code": "01651"}, "reason": "mã sai"},
        {"row": 909, "was": {"old_code": "09999"}, "set": {"old_code": "01615"}, "reason": "đã khác"},
        {"row": 909, "was": {"old_code": "01615"}, "set": {"old_code": "01615"}},
        {"row": 909, "was": {"old_code": "01615"}, "set": {"merge_type": "part"}, "reason": "x"},
        {"row": 99999, "was": {"old_code": "01615"}, "set": {"old_code": "01615"}, "reason": "x"},
    ]}, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("TTHC_CONVERSION_CORRECTIONS", str(path))
    checked = checked_conversion(load_settings())
    assert [c.row for c in checked.applied] == [912]
    refused = "\n".join(checked.refused)
    assert len(checked.refused) == 4
    assert "corrections.yaml correction 2" in refused and "row 909 says {'old_code': '01615'}" in refused
    assert "correction 3 (row 909): no `reason`" in refused
    assert "correction 4 (row 909): unknown columns ['merge_type']" in refused
    assert "has no data row 99999" in refused


def test_loading_the_lists_reports_the_wrong_row_as_a_finding_that_names_it(monkeypatch, tmp_path):
    from runner.pipeline import RunContext, reference_findings

    period = load_settings().period("2025-Q2")
    context = lambda: RunContext(load_settings(), period, "t", tmp_path, "duckdb://")  # noqa: E731
    applied = reference_findings(context())
    assert [(f.check_id, f.severity, f.unit_code) for f in applied] == \
        [("reference.correction_applied", "info", "01651")]
    monkeypatch.setenv("TTHC_CONVERSION_CORRECTIONS", str(tmp_path / "none.yaml"))
    (tmp_path / "none.yaml").write_text("version: 0\ncorrections: []\n", encoding="utf-8")
    [wrong] = reference_findings(context())
    assert (wrong.check_id, wrong.severity, wrong.unit_code, wrong.expected) == \
        ("reference.conversion_mismatch", "warning", "01615", "01651")
    assert "dòng 912" in wrong.message and "Xã Hồng Quang" in wrong.message and "có mã 01651" in wrong.message
    assert wrong.location == "conversion_2025-07-01_new_from_old.csv row 912, column Mã Xã cũ (cột 5)"
