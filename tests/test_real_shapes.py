"""Figures as real reports print them (issue 17): a corpus of rows in those shapes with the
findings each must give (tests/data/real_shapes/corpus.csv, written by
tests/data/make_real_shapes_corpus.py), and the options that say which province and convention a
file follows."""
import csv
import io
import json
from pathlib import Path

import pytest

from runner.validate_files import validate_files
from tthc.config import load_settings
from tthc.form import REPORTED_FIGURES
from tthc.numbers import ApproximateCount, NotACount, read_count
from validations.diagnosis import MAX_CANDIDATES
from validations.offline import FindingsOut

CORPUS = Path(__file__).parent / "data" / "real_shapes" / "corpus.csv"


def validate(paths, output_format="json", **options) -> tuple[str, FindingsOut]:
    stream = io.StringIO()
    out = FindingsOut(output_format, stream)
    assert validate_files([Path(p) for p in paths], load_settings(), out, **options) == []
    out.close()
    return stream.getvalue(), out


@pytest.fixture(scope="module")
def corpus_findings():
    text, _ = validate([CORPUS], province="all", convention="any")
    return json.loads(text)


def _cases() -> dict[int, dict]:
    with open(CORPUS, encoding="utf-8", newline="") as fh:
        return {line: row for line, row in enumerate(csv.DictReader(fh), start=2)}


def test_the_corpus_gives_the_expected_findings_row_by_row(corpus_findings):
    cases = _cases()
    assert len(cases) >= 40
    got: dict[int, set[str]] = {line: set() for line in cases}
    for finding in corpus_findings:
        line = int(finding["location"].rsplit("dòng ", 1)[1])
        got[line].add(f"{finding['check']}:{finding['severity']}")
    differ = {cases[line]["case"]: (sorted(set(cases[line]["expect"].split())), sorted(found))
              for line, found in got.items() if found != set(cases[line]["expect"].split())}
    assert differ == {}


def test_no_diagnosis_lists_more_than_ten_candidates_and_each_restores_the_row(corpus_findings):
    from validations.diagnosis import holds

    assert any(finding["candidates"] for finding in corpus_findings)
    for finding in corpus_findings:
        assert len(finding["candidates"]) <= MAX_CANDIDATES
    by_case = {row["case"]: row for row in _cases().values()}
    fixes = {f["location"]: f["suggested_fix"] for f in corpus_findings if f["check"] == "diagnosis.typing_error"}
    lines = {row["case"]: line for line, row in _cases().items()}
    expected = {"m02": {"resolved_total": 48236}, "m04": {"resolved_early_on_time": 60871},
                "m06": {"resolved_early_on_time": 15380}, "n02": {"received_total": 73540},
                "n04": {"received_direct_postal": 5216}, "t03": {"pending_overdue": 75},
                "t04": {"carried_over": 1234},
                "t06": {"resolved_total": 1390}, "t10": {"received_new": 3150},
                "t11": {"resolved_early_on_time": 8756}}
    for case, fix in expected.items():
        assert fixes[f"corpus.csv, dòng {lines[case]}"] == fix, case
    for case in ("t01", "t05", "t09"):  # two slips explain it, or a part is missing: no suggestion
        assert fixes[f"corpus.csv, dòng {lines[case]}"] is None, case
    for finding in corpus_findings:  # every correction offered makes every checkable identity of the row hold
        row = by_case[_cases()[int(finding["location"].rsplit("dòng ", 1)[1])]["case"]]
        figures = {name: _count(row[name]) for name in REPORTED_FIGURES}
        for candidate in finding["candidates"]:
            assert holds({**figures, **candidate}), (row["case"], candidate)


def _count(cell: str) -> int | None:
    try:
        return read_count(cell).value
    except NotACount:
        return None


def test_a_not_narrowed_diagnosis_says_how_many(corpus_findings):
    lines = {row["case"]: line for line, row in _cases().items()}
    where = f"corpus.csv, dòng {lines['t05']}"
    diagnosis = next(f for f in corpus_findings if f["location"] == where and f["check"] == "diagnosis.typing_error")
    assert diagnosis["candidates"] == [] and "cách sửa một số" in diagnosis["message"]
    assert "Giải quyết quá hạn (10)" in diagnosis["message"]
    corroborated = next(f for f in corpus_findings if f["location"] == f"corpus.csv, dòng {lines['t06']}"
                        and f["check"] == "diagnosis.typing_error")
    assert corroborated["candidates"][0] == {"resolved_total": 1390} and "khớp tổng các dòng chi tiết" in \
        corroborated["message"]


def test_a_period_of_another_convention_names_it(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("unit_code,field_code,period_start,period_end,received_total\n"
                    "25,,2021-03-15,2021-06-14,100\n25,,2021-04-01,2021-06-30,100\n", encoding="utf-8")
    found = json.loads(validate([path], province="25", convention="calendar_quarter")[0])
    periods = [f for f in found if f["check"] == "period.convention"]
    assert len(periods) == 1 and periods[0]["severity"] == "warning"
    assert "15/03/2021 – 14/06/2021 là quý theo quy ước decree_09_2019" in periods[0]["message"]
    assert not [f for f in found if f["check"] == "unit.known"]
    found = json.loads(validate([path], province="25", convention="decree_09_2019")[0])
    assert "01/04/2021 – 30/06/2021 là quý theo quy ước calendar_quarter" in next(
        f["message"] for f in found if f["check"] == "period.convention")


def test_the_text_output_ends_with_a_summary_per_check(corpus_findings):
    text, out = validate([CORPUS], "text", province="all", convention="any")
    tail = text[text.index("Tóm tắt theo loại kiểm tra:"):].splitlines()
    assert tail[1] == "  Đơn vị, lĩnh vực và kỳ báo cáo:" and "    period.convention: 3 cảnh báo" in tail
    assert "    unit.known: 1 nghiêm trọng" in tail and tail[-1].startswith("Tổng: ")
    counted = sum(int(part.split()[0]) for line in tail[1:-1] if line.startswith("    ")
                  for part in line.split(": ", 1)[1].split(", "))
    assert counted == len(corpus_findings)


@pytest.mark.parametrize("raw, value, note", [
    ("509,772", 509772, "comma_grouping"), ("140. 683", 140683, "spaces"), ("12 345", 12345, "space_grouping"),
    ("09", 9, "leading_zeros"), ("140.683", 140683, None), ("1,234,567", 1234567, "comma_grouping")])
def test_number_forms_are_read_and_said(raw, value, note):
    assert read_count(raw) == (value, note)


@pytest.mark.parametrize("raw, kind", [("tám", "words"), ("mười hai", "words"), ("gần 27.000", "approximate"),
                                       ("trên 7.600", "approximate"), ("khoảng 1.200", "approximate")])
def test_words_and_approximations_are_refused_as_such(raw, kind):
    with pytest.raises(ApproximateCount) as caught:
        read_count(raw)
    assert caught.value.kind == kind


@pytest.mark.parametrize("raw", ["12,5", "12.5", "1.234,5", "abc"])
def test_other_text_is_still_not_a_count(raw):
    with pytest.raises(NotACount) as caught:
        read_count(raw)
    assert not isinstance(caught.value, ApproximateCount)


def test_a_workbook_with_columns_real_reports_add(tmp_path):
    """Columns numbered after (14), known by their header: new receipts, early and on time merged,
    awaiting supplements; a number form read with a warning naming the cell."""
    from runner.validate_files import read_xlsx
    from tests.data.make_spreadsheet_corpus import HEADINGS, sheet, write_xlsx

    headings = [*HEADINGS, (9, 15, 11, 15, "Tiếp nhận mới trong kỳ"), (9, 16, 11, 16, "Giải quyết đúng và trước hạn"),
                (9, 17, 11, 17, "Đang chờ bổ sung hồ sơ")]
    cells = {(12, 15): "(15)", (12, 16): "(16)", (12, 17): "(17)",
             (13, 15): 18, (13, 16): 13, (13, 17): 1,
             (14, 15): 11, (14, 16): 7, (14, 17): "01",  # Hộ tịch: 5 + 6 new, 4 + 3 early or on time
             (15, 15): 7, (15, 16): 9, (15, 17): 0}  # Chứng thực: 5 + 1 typed 9
    path = tmp_path / "Bieu06_01201.xlsx"
    write_xlsx(path, sheet("01201", headings=headings, cells=cells))
    rows, findings = read_xlsx(path, load_settings())
    by_row = {r["row"]: r for r in rows.to_pylist()}
    assert (by_row[14]["received_new"], by_row[14]["resolved_early_on_time"], by_row[14]["pending_paused"]) == (11, 7, 1)
    reading = [f for f in findings if f.check_id == "schema.count_reading"]
    assert len(reading) == 1 and "row 14" in reading[0].location and "'01' has leading zeros, read as 1" in \
        reading[0].message
    found = json.loads(validate([path])[0])
    on_ct = {f["check"] for f in found if f["location"] and f["location"].endswith("dòng 15")}
    assert {"identity.early_on_time", "identity.resolved_merged", "diagnosis.typing_error"} <= on_ct
    fix = next(f["suggested_fix"] for f in found if f["check"] == "diagnosis.typing_error"
               and f["location"].endswith("dòng 15"))
    assert fix == {"resolved_early_on_time": 6}
