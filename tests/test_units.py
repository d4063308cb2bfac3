from datetime import date

from tthc.config import load_settings
from tthc.units import classify_merge, conversion_table, units_for_province, units_in_force


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
