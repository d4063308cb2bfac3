"""The commune workbook extractor on hand-built workbooks, good and broken."""
import json

import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tthc.landing import Manifest
from extractors.registry import extract_source
from tthc.config import load_settings

FIELDS = [("Hộ tịch", "HT"), ("Chứng thực", "CT")]


def write_workbook(path, *, period=("01/04/2024", "30/06/2024"), unit="01279", cells=None, numbers_row=True,
                   field_names=("Hộ tịch", "Chứng thực")):
    wb = Workbook()
    ws = wb.active
    ws.title = "Biểu 06"
    ws["A1"] = "ỦY BAN NHÂN DÂN TỈNH CAO BẰNG"
    ws["A4"] = "BIỂU 06. TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH"
    ws["A5"] = f"Kỳ báo cáo: Quý II năm 2024 (Từ ngày {period[0]} đến ngày {period[1]})"
    ws["A6"] = f"Đơn vị báo cáo: UBND Phường Nùng Trí Cao (mã ĐVHC: {unit})"
    ws["A9"], ws["B9"], ws["C9"] = "STT", "Lĩnh vực giải quyết", "Số hồ sơ nhận giải quyết"
    ws.merge_cells("C9:F9")
    if numbers_row:
        for c in range(1, 15):
            ws.cell(12, c, f"({c})")
    ws["B13"] = "Tổng cộng"
    base = [10, 3, 5, 2, 6, 3, 2, 1, 4, 3, 1, 0]
    for i, name in enumerate(field_names):
        r = 14 + i
        ws.cell(r, 1, i + 1)
        ws.cell(r, 2, name)
        for j, value in enumerate(base):
            ws.cell(r, 3 + j, value)
    for (r, c), value in (cells or {}).items():
        ws.cell(r, c, value)
    ws.cell(17, 1, "Ghi chú: số liệu tính đến hết ngày 30/6")
    wb.save(path)
    return path


@pytest.fixture
def inbox(tmp_path, var, monkeypatch):
    folder = tmp_path / "inbox"
    (folder / "2024-Q2").mkdir(parents=True)
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(folder))
    return folder / "2024-Q2"


def run_extract(var):
    settings = load_settings()
    path = extract_source(settings.source("commune_spreadsheets"), settings.period("2024-Q2"), var, "t1", settings)
    manifest = Manifest.read(path)
    rows = pq.read_table(path.parent / manifest.files[0]["path"]).to_pylist()
    return manifest, rows


def test_a_good_workbook_with_vietnamese_numbers(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx", cells={(14, 3): "1.234", (14, 4): "1. 229", (15, 3): " 10 "})
    manifest, rows = run_extract(var)
    assert manifest.status == "ok" and manifest.errors == []
    fields = {r["field_code"]: r for r in rows if not r["is_total"]}
    assert fields["HT"]["received_total"] == 1234 and fields["HT"]["received_online"] == 1229
    assert fields["CT"]["received_total"] == 10
    assert fields["CT"]["returned_withdrawn"] == 0
    assert {r["unit_code"] for r in rows} == {"01279"}
    assert str(rows[0]["period_start"]) == "2024-04-01"


def test_a_bad_cell_is_named_and_the_rest_is_kept(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx", cells={(15, 7): "12,5", (14, 8): -3})
    manifest, rows = run_extract(var)
    messages = {(e["row"], e["column"]): e["message"] for e in manifest.errors}
    assert "not a whole number" in messages[(15, "G")]
    assert "negative" in messages[(14, "H")]
    assert all(e["file"] == "Bieu06_01279.xlsx" and e["sheet"] == "Biểu 06" for e in manifest.errors)
    fields = {r["field_code"]: r for r in rows if not r["is_total"]}
    assert fields["CT"]["resolved_total"] is None and fields["CT"]["received_total"] == 10


def test_an_unknown_field_is_an_error(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx", field_names=("Hộ tịch", "Thủ tục lạ"))
    manifest, rows = run_extract(var)
    assert [(e["row"], e["column"]) for e in manifest.errors] == [(15, "B")]
    assert "Thủ tục lạ" in manifest.errors[0]["message"]
    assert [r["field_code"] for r in rows if not r["is_total"]] == ["HT"]


@pytest.mark.parametrize("name, content, expected", [
    ("Bieu06_01273.xlsx", b"", "empty"),
    ("Bieu06_01274.xlsx", b"this is not a workbook", "not a zip"),
    ("Bieu06_01275.ods", b"a,b\n1,2\n", "unsupported file type"),
    ("Bieu06_01276.csv", b"a,b\n1,2\n", "column-number row"),
])
def test_unreadable_files_are_quarantined_and_the_others_read(inbox, var, name, content, expected):
    write_workbook(inbox / "Bieu06_01279.xlsx")
    (inbox / name).write_bytes(content)
    manifest, rows = run_extract(var)
    assert {r["unit_code"] for r in rows} == {"01279"}
    (error,) = manifest.errors
    assert expected in error["message"] and name in error["message"]
    quarantined = var / "quarantine" / "2024-Q2" / "commune_spreadsheets"
    assert (quarantined / name).exists()
    assert expected in (quarantined / f"{name}.reason.txt").read_text(encoding="utf-8")


def test_a_workbook_without_the_form_layout_is_refused(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx", numbers_row=False)
    manifest, rows = run_extract(var)
    assert rows == []
    assert "column-number row" in manifest.errors[0]["message"]
    assert manifest.errors[0]["unit_code"] == "01279"  # from the file name: the call-back list names whom to call


def test_a_workbook_for_another_period_is_refused(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx", period=("01/01/2024", "31/03/2024"))
    manifest, rows = run_extract(var)
    assert rows == [] and "expected 2024-Q2" in manifest.errors[0]["message"]


def test_reextracting_gives_the_same_file(inbox, var):
    write_workbook(inbox / "Bieu06_01279.xlsx")
    first, _ = run_extract(var)
    second, _ = run_extract(var)
    assert first.files == second.files
    assert json.dumps(first.files)  # checksums recorded


def test_a_typed_total_that_disagrees_with_the_form_becomes_a_finding_naming_the_cell(inbox, var, tmp_path):
    from extractors.registry import landed_source
    from transforms.canonicalize import self_reported_figures

    write_workbook(inbox / "Bieu06_01279.xlsx", cells={(14, 3): 11})
    manifest, rows = run_extract(var)
    assert manifest.errors == []
    assert [(w["row"], w["column"]) for w in manifest.warnings] == [(14, "C")]
    settings = load_settings()
    period = settings.period("2024-Q2")
    count, findings = self_reported_figures([landed_source(settings.source("commune_spreadsheets"), period, var, manifest)],
                                            period, tmp_path / "self_reported.parquet", tmp_path / "totals.parquet")
    assert count == 2
    [finding] = [f for f in findings if f.check_id == "extract.input_warning"]
    assert finding.severity == "warning" and finding.unit_code == "01279"
    assert "Bieu06_01279.xlsx" in finding.location and "row 14, column C" in finding.location
    assert "typed total 11" in finding.message


def test_a_spreadsheets_folder_that_is_not_there_is_a_source_down_and_an_empty_inbox_lands_nothing(tmp_path, var,
                                                                                                    monkeypatch):
    from extractors.base import SourceUnavailable
    from extractors.registry import landed_sources

    settings = load_settings()
    period = settings.period("2024-Q2")
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(tmp_path / "not-mounted"))
    with pytest.raises(SourceUnavailable, match="not-mounted does not exist"):
        extract_source(settings.source("commune_spreadsheets"), period, var, "t1", settings)
    _, missing = landed_sources(settings, period, var)
    assert "not-mounted does not exist" in missing["commune_spreadsheets"]

    (tmp_path / "share").mkdir()  # the share is there, without the quarter's folder: the source is expected
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(tmp_path / "share"))
    with pytest.raises(SourceUnavailable, match="has no folder 2024-Q2 for the period's workbooks"):
        extract_source(settings.source("commune_spreadsheets"), period, var, "t2", settings)
    (tmp_path / "share" / "2024-Q2").mkdir()  # the quarter's folder, nothing arrived yet
    manifest = Manifest.read(extract_source(settings.source("commune_spreadsheets"), period, var, "t3", settings))
    assert manifest.rows == 0 and manifest.stats["files_found"] == 0


def test_one_units_workbook_under_two_names_is_read_once_and_two_different_ones_are_refused(inbox, var):
    """The same workbook saved twice is read once, with a warning; two workbooks of one unit that
    disagree are both refused (which is right cannot be told), each named, with the unit, and
    quarantined; the other units are read and nothing aborts."""
    write_workbook(inbox / "Bieu06_01279.xlsx")
    write_workbook(inbox / "Bieu06_01279 - Copy.xlsx")
    write_workbook(inbox / "Bieu06_01282.xlsx", unit="01282")
    write_workbook(inbox / "Bieu06_01282_sua.xlsx", unit="01282", cells={(14, 3): 11, (14, 4): 4})
    write_workbook(inbox / "Bieu06_01285.xlsx", unit="01285")
    manifest, rows = run_extract(var)
    read = {(r["unit_code"], r["file"]) for r in rows}
    assert read == {("01279", "Bieu06_01279 - Copy.xlsx"), ("01285", "Bieu06_01285.xlsx")}
    copy = [w for w in manifest.warnings if w["unit_code"] == "01279"]
    assert len(copy) == 1 and copy[0]["file"] == "Bieu06_01279.xlsx" and "bản sao" in copy[0]["message"]
    refused = [e for e in manifest.errors if e["unit_code"] == "01282"]
    assert {e["file"] for e in refused} == {"Bieu06_01282.xlsx", "Bieu06_01282_sua.xlsx"}
    assert all(e["quarantined"] and "Bieu06_01282.xlsx, Bieu06_01282_sua.xlsx" in e["message"] for e in refused)
