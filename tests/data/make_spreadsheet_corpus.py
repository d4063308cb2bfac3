"""Writes tests/data/spreadsheets/: Biểu 06 files for 2024-Q2 as communes send them, good and
broken, and expected.json with what the extractor must make of each (asserted by
tests/test_spreadsheet_corpus.py). Run it again after changing a case:

    .venv/bin/python tests/data/make_spreadsheet_corpus.py
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import xlsxwriter
from openpyxl import Workbook

OUT = Path(__file__).resolve().parent / "spreadsheets"
PERIOD_LINE = "Kỳ báo cáo: Quý II năm 2024 (Từ ngày 01/04/2024 đến ngày 30/06/2024)"
HT = [12, 5, 6, 1, 9, 4, 3, 2, 3, 2, 1, 0]  # received 12 = 5+6+1; resolved 9 = 4+3+2; pending 3 = 2+1
CT = [7, 4, 3, 0, 6, 5, 1, 0, 1, 1, 0, 0]
HEADINGS = [  # (row, first col, last row, last col, text), 1-based as Excel shows them
    (9, 1, 11, 1, "STT"), (9, 2, 11, 2, "Lĩnh vực giải quyết"), (9, 3, 9, 6, "Số hồ sơ nhận giải quyết"),
    (10, 3, 11, 3, "Tổng số"), (10, 4, 10, 5, "Trong kỳ"), (11, 4, 11, 4, "Trực tuyến"),
    (11, 5, 11, 5, "Trực tiếp, dịch vụ bưu chính"), (10, 6, 11, 6, "Từ kỳ trước"),
    (9, 7, 9, 10, "Số hồ sơ đã giải quyết"), (10, 7, 11, 7, "Tổng số"), (10, 8, 11, 8, "Trước hạn"),
    (10, 9, 11, 9, "Đúng hạn"), (10, 10, 11, 10, "Quá hạn"), (9, 11, 9, 13, "Số hồ sơ đang giải quyết"),
    (10, 11, 11, 11, "Tổng số"), (10, 12, 11, 12, "Trong hạn"), (10, 13, 11, 13, "Quá hạn"),
    (9, 14, 11, 14, "Số hồ sơ trả lại, rút, dừng xử lý"),
]
L = "ABCDEFGHIJKLMN"


def sheet(unit: str | None, fields=(("Hộ tịch", HT), ("Chứng thực", CT)), *, period_line=PERIOD_LINE,
          formulas=True, cells=None, extra_rows=(), headings=HEADINGS, numbers=True, title="Biểu 06"):
    """A Biểu 06 sheet as {(row, col): value or ("=formula", cached)} with its merges."""
    grid: dict[tuple[int, int], object] = {
        (1, 1): "ỦY BAN NHÂN DÂN TỈNH CAO BẰNG", (1, 6): "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        (4, 1): "BIỂU 06. TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", (7, 1): "Đơn vị tính: Số hồ sơ TTHC",
    }
    if period_line:
        grid[(5, 1)] = period_line
    if unit:
        grid[(6, 1)] = f"Đơn vị báo cáo: UBND xã Thử Nghiệm (mã ĐVHC: {unit})"
    for r1, c1, _r2, _c2, text in headings:
        grid[(r1, c1)] = text
    if numbers:
        for c in range(1, 15):
            grid[(12, c)] = f"({c})"
    rows = [*extra_rows] if extra_rows else []
    r = 14
    placed = []
    for name, figures in fields:
        while rows and rows[0][0] == r:
            _, stt, label = rows.pop(0)
            grid[(r, 1)], grid[(r, 2)] = stt, label
            r += 1
        grid[(r, 1)], grid[(r, 2)] = len(placed) + 1, name
        for j, value in enumerate(figures):
            grid[(r, 3 + j)] = value
        if formulas:
            for col, parts in ((3, "DEF"), (7, "HIJ"), (11, "LM")):
                grid[(r, col)] = ("=" + "+".join(f"{p}{r}" for p in parts), figures[col - 3])
        placed.append((r, figures))
        r += 1
    grid[(13, 2)] = "Tổng cộng"
    for j in range(12):
        total = sum(_number(f[j]) for _, f in placed)
        grid[(13, 3 + j)] = (f"=SUM({L[2 + j]}{placed[0][0]}:{L[2 + j]}{placed[-1][0]})", total) if formulas else total
    grid[(r + 1, 1)] = "Ghi chú: số liệu tính đến hết ngày 30/6/2024"
    grid[(r + 3, 2)] = "NGƯỜI LẬP BIỂU"
    for (row, col), value in (cells or {}).items():
        grid[(row, col)] = value
    return {"title": title, "grid": grid, "merges": [h for h in headings if (h[0], h[1]) != (h[2], h[3])]}


def _number(value) -> int:
    text = str(value).replace(".", "").replace(" ", "")
    return int(text) if text.isdigit() else 0


def write_xlsx(path: Path, *sheets, hidden=()):
    book = xlsxwriter.Workbook(str(path))
    for spec in sheets:
        ws = book.add_worksheet(spec["title"])
        if spec["title"] in hidden:
            ws.hide()
        merged = {(r1, c1) for r1, c1, *_ in spec["merges"]}
        for r1, c1, r2, c2, _text in spec["merges"]:
            ws.merge_range(r1 - 1, c1 - 1, r2 - 1, c2 - 1, spec["grid"].get((r1, c1)))
        for (r, c), value in sorted(spec["grid"].items()):
            if (r, c) in merged:
                continue
            if isinstance(value, tuple):
                ws.write_formula(r - 1, c - 1, value[0], None, value[1])
            elif isinstance(value, str):
                ws.write_string(r - 1, c - 1, value)  # numbers as text stay text
            else:
                ws.write(r - 1, c - 1, value)
    book.close()


def write_openpyxl(path: Path, spec):
    """Formulas without cached values, as files made by a program that never calculates."""
    wb = Workbook()
    ws = wb.active
    ws.title = spec["title"]
    for (r, c), value in spec["grid"].items():
        ws.cell(r, c, value[0] if isinstance(value, tuple) else value)
    for r1, c1, r2, c2, _ in spec["merges"]:
        ws.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    wb.save(path)


def write_csv(path: Path, spec, delimiter=",", encoding="utf-8"):
    grid = spec["grid"]
    last_row, last_col = max(r for r, _ in grid), max(c for _, c in grid)
    with open(path, "w", newline="", encoding=encoding) as fh:
        out = csv.writer(fh, delimiter=delimiter)
        for r in range(1, last_row + 1):
            row = [grid.get((r, c), "") for c in range(1, last_col + 1)]
            out.writerow(["" if v is None else (v[1] if isinstance(v, tuple) else v) for v in row])


def good(ht=HT, ct=CT):
    return {"HT": dict(zip(FIGURES, ht)), "CT": dict(zip(FIGURES, ct))}


FIGURES = ("received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
           "resolved_early", "resolved_on_time", "resolved_late", "pending_total", "pending_within_due",
           "pending_overdue", "returned_withdrawn")


def build() -> dict[str, dict]:
    """Writes every case; returns the expected outcome of each file."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    expected: dict[str, dict] = {}

    def case(name, outcome, writer, *args, **kwargs):
        writer(OUT / name, *args, **kwargs)
        expected[name] = outcome

    case("Bieu06_01201.xlsx", {"unit": "01201", "fields": good(), "errors": [], "warnings": []},
         write_xlsx, sheet("01201"))
    case("Bieu06_01202.xlsx", {"unit": "01202", "fields": good(), "errors": [], "warnings": []},
         write_xlsx, sheet("01202", formulas=False))
    case("Bieu06_01203.xlsx", {"unit": "01203", "fields": good([1234, 1229, 5, 0, 9, 4, 3, 2, 1225, 1225, 0, 0]),
                               "errors": [], "warnings": []},
         write_xlsx, sheet("01203", fields=(("Hộ tịch", ["1.234", "1. 229", " 5 ", "0", 9, 4, 3, 2, "1.225", "1.225",
                                                          0, 0]), ("Chứng thực", CT)), formulas=False))
    case("Bieu06_01204.xlsx", {"unit": "01204", "fields": good([13] + HT[1:]), "errors": [],
                               "warnings": [[14, "C", "typed total 13 disagrees with the form's formula =D14+E14+F14 = 12"],
                                            [13, "C", "typed total 21 disagrees with the sum of the field rows"]]},
         write_xlsx, sheet("01204", cells={(14, 3): 13, (13, 3): 21}))
    case("Bieu06_01205.xlsx", {"unit": "01205", "fields": good(HT[:4] + [19] + HT[5:]), "errors": [],
                               "warnings": [[14, "G", "cached value 19 of =H14+I14+J14 disagrees with its inputs (9)"],
                                            [13, "G", "cached value 15 of =SUM(G14:G15) disagrees with its inputs (25)"]]},
         write_xlsx, sheet("01205", cells={(14, 7): ("=H14+I14+J14", 19)}))
    case("Bieu06_01206.xlsx", {"unit": "01206", "fields": good(), "errors": [],
                               "warnings": [[13, "C", "18 formulas have no cached value"]]},
         write_openpyxl, sheet("01206"))
    case("Bieu06_01207.xlsx", {"unit": "01207", "fields": good(), "errors": [],
                               "warnings": [[13, "G", "typed total 1015 disagrees with the sum of the field rows"]]},
         write_xlsx, sheet("01207", cells={(13, 7): 1015}))
    instructions = {"title": "Hướng dẫn", "grid": {(1, 1): "Hướng dẫn điền Biểu 06", (2, 1): "Cột (3) = (4)+(5)+(6)"},
                    "merges": []}
    case("Bieu06_huyen_nhieu_xa.xlsx", {"units": ["01208", "01209"], "errors": [], "warnings": []},
         write_xlsx, instructions, sheet("01208", title="Xã A"), sheet("01209", title="Xã B"))
    old = sheet("01210", period_line="Kỳ báo cáo: Quý I năm 2024 (Từ ngày 01/01/2024 đến ngày 31/03/2024)", title="Q1 (cũ)")
    case("Bieu06_01210.xlsx", {"unit": "01210", "fields": good(), "errors": [],
                               "warnings": [[None, None, "hidden sheet with a Biểu 06 layout: not read"]]},
         write_xlsx, sheet("01210"), old, hidden=("Q1 (cũ)",))
    case("Bieu06_01211.xlsx", {"unit": "01211", "fields": good(), "errors": [], "warnings": []},
         write_xlsx, sheet("01211", extra_rows=[(14, "I", "CẤP XÃ"), (15, "", "(*) Số liệu tạm tính"),
                                                (16, None, None), (17, "A", "Lĩnh vực Tư pháp - Hộ tịch")]))
    case("Bieu06_01212.xlsx", {"unit": "01212", "fields": {"HT": {"resolved_total": None, "resolved_early": None,
                                                                  "received_online": None, "received_total": 12}},
                               "errors": [[14, "G", "not a whole number"], [14, "H", "negative"],
                                          [14, "D", "'năm' is a number written in words"]], "warnings": []},
         write_xlsx, sheet("01212", formulas=False, cells={(14, 7): "12,5", (14, 8): -3, (14, 4): "năm"}))
    case("Bieu06_01213.xlsx", {"unit": "01213", "fields": {"HT": dict(zip(FIGURES, HT))},
                               "errors": [[15, "B", "unknown field of work 'Đất đai xã'"]], "warnings": []},
         write_xlsx, sheet("01213", fields=(("Hộ tịch", HT), ("Đất đai xã", CT))))
    case("Bieu06_01214.xlsx", {"unit": "01214", "fields": {"HT": dict(zip(FIGURES, HT))},
                               "errors": [[15, "B", "again (already on sheet 'Biểu 06' row 14)"]], "warnings": []},
         write_xlsx, sheet("01214", fields=(("Hộ tịch", HT), ("Hộ tịch", CT))))
    case("Bieu06_01215.xlsx", {"unit": "01215", "fields": good(), "errors": [], "warnings": []},
         write_xlsx, sheet("01215", period_line="Kỳ báo cáo: Quý II năm 2024"))
    case("Bieu06_01216_2024-Q2.xlsx", {"unit": "01216", "fields": good(), "errors": [], "warnings": []},
         write_xlsx, sheet(None, period_line="Kỳ báo cáo quý"))
    case("Bieu06_01217.csv", {"unit": "01217", "fields": good([1234, 1229, 5, 0] + HT[4:]), "errors": [],
                              "warnings": []},
         write_csv, sheet("01217", fields=(("Hộ tịch", ["1.234", "1.229", "5", "0"] + HT[4:]), ("Chứng thực", CT))))
    case("Bieu06_01218.csv", {"unit": "01218", "fields": good(), "errors": [], "warnings": []},
         write_csv, sheet("01218"), delimiter=";", encoding="utf-8-sig")
    swapped = [(r1, c1, r2, c2, {"Trước hạn": "Đúng hạn", "Đúng hạn": "Trước hạn"}.get(t, t))
               for r1, c1, r2, c2, t in HEADINGS]
    case("Bieu06_01219.xlsx", {"refused": "column H is numbered (8) but headed 'số hồ sơ đã giải quyết / đúng hạn'"},
         write_xlsx, sheet("01219", headings=swapped))
    case("Bieu06_01220.xlsx", {"refused": "no sheet has the Biểu 06 column-number row"},
         write_xlsx, sheet("01220", numbers=False))
    case("Bieu06_01221.xlsx", {"refused": "expected 2024-Q2"},
         write_xlsx, sheet("01221", period_line="Kỳ báo cáo: Quý III năm 2024 (Từ ngày 01/07/2024 đến ngày 30/09/2024)"))
    case("Bieu06_01222.xlsx", {"refused": "the file is empty"}, lambda p: p.write_bytes(b""))
    case("Bieu06_01223.xlsx", {"refused": "not a zip archive"}, lambda p: p.write_bytes(b"PK? not really a workbook"))
    case("Bieu06_01224.xls", {"refused": "unsupported file type '.xls'"}, lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0"))
    case("bao_cao_xa.csv", {"refused": "no unit code"}, write_csv, sheet(None))
    case("Bieu06_01225.xlsx", {"refused": "no period"}, write_xlsx, sheet("01225", period_line=None))
    case("Bieu06_01226.xlsx", {"unit": "01226", "fields": {"HT": {"received_total": None}},
                               "errors": [[14, "C", "12.5 is not a whole number"]], "warnings": []},
         write_xlsx, sheet("01226", formulas=False, cells={(14, 3): 12.5}))
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return expected


if __name__ == "__main__":
    print(f"{len(build())} files in {OUT}")
