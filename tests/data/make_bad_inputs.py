"""Writes tests/data/bad_inputs/: a corpus of bad inputs of every kind a quarterly run meets
(commune spreadsheets and CSV, pages of the portal API, rows of an agency database), each next
to good inputs, and expected.json with what the pipeline must say about each (asserted by
tests/test_bad_inputs.py). Large or pathological inputs (a real zip bomb, a file over the size
limit) are made at test time, not stored. Run it again after changing a case:

    .venv/bin/python tests/data/make_bad_inputs.py
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "bad_inputs"
_spec = importlib.util.spec_from_file_location("make_spreadsheet_corpus", HERE / "make_spreadsheet_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
sheet, write_xlsx, write_csv, HEADINGS, HT, CT = (corpus.sheet, corpus.write_xlsx, corpus.write_csv, corpus.HEADINGS,
                                                  corpus.HT, corpus.CT)
FIGURES = corpus.FIGURES


def spreadsheets(out: Path) -> dict:
    out.mkdir(parents=True)
    expected: dict[str, dict] = {}

    def case(name, what, outcome, writer, *args, **kwargs):
        writer(out / name, *args, **kwargs)
        expected[name] = {"what": what, **outcome}

    case("Bieu06_01301.xlsx", "a good workbook next to the bad ones",
         {"unit": "01301", "fields": corpus.good(), "errors": []}, write_xlsx, sheet("01301"))
    case("Bieu06_01302.xlsx", "formulas that read other workbooks (external links)",
         {"unit": "01302", "fields": {"HT": {"received_total": None, "resolved_total": 9},
                                     "CT": {"received_total": 7, "resolved_total": None}},
          "errors": [[14, "C", "='[1]Sheet1'!C5 reads another workbook"],
                     [15, "G", "reads another workbook"]]},
         write_xlsx, sheet("01302", cells={(14, 3): ("='[1]Sheet1'!C5", 12),
                                           (15, 7): ("='C:\\Bao cao\\[Bieu06_xa.xlsx]Sheet1'!G15", 6)}))
    merged_figures = sheet("01303", formulas=False)
    merged_figures["merges"].append((14, 3, 14, 5, None))
    case("Bieu06_01303.xlsx", "figure cells merged across three columns in a field row",
         {"unit": "01303", "fields": {"HT": {"received_total": None, "received_online": None,
                                            "received_direct_postal": None, "carried_over": 1, "resolved_total": 9},
                                     "CT": dict(zip(FIGURES, CT))},
          "errors": [[14, "C", "cells C14:E14 are merged inside the table"]]},
         write_xlsx, merged_figures)
    merged_label = sheet("01304", formulas=False)
    merged_label["merges"].append((14, 2, 15, 2, None))
    case("Bieu06_01304.xlsx", "a field label merged down over two field rows",
         {"unit": "01304", "fields": {"HT": dict(zip(FIGURES, HT))},
          "errors": [[14, "B", "cells B14:B15 are merged inside the table"]]},
         write_xlsx, merged_label)
    wide = [h for h in HEADINGS if h[:2] not in ((9, 3), (9, 7))] + [(9, 3, 9, 7, "Số hồ sơ nhận giải quyết"),
                                                                     (9, 8, 9, 10, "Số hồ sơ đã giải quyết")]
    case("Bieu06_01305.xlsx", "a header merged over the wrong columns (received spans column (7))",
         {"refused": "column G is numbered (7) but headed 'số hồ sơ nhận giải quyết / tổng số'"},
         write_xlsx, sheet("01305", headings=wide))
    case("Bieu06_01306.csv", "a CSV in UTF-16 without a byte-order mark",
         {"refused": "looks like UTF-16 without a byte-order mark"},
         write_csv, sheet("01306"), encoding="utf-16-le")
    case("Bieu06_01307.csv", "a CSV whose bytes are neither UTF-8 nor Windows-1258",
         {"refused": "neither UTF-8 (byte 0x81"},
         lambda p: p.write_bytes(b"BI\x81U 06,\x8d\x8e\x9a\r\n(1),(2),(3)\r\n"))
    case("Bieu06_01308.csv", "an empty CSV (0 bytes)", {"refused": "the file is empty"}, lambda p: p.write_bytes(b""))
    case("Bieu06_01309.csv", "a CSV export with its own headers instead of the form's",
         {"refused": "no sheet has the Biểu 06 column-number row"},
         lambda p: p.write_text("ma_xa,linh_vuc,tiep_nhan,da_giai_quyet,dang_giai_quyet\n01309,HT,12,9,3\n",
                                encoding="utf-8"))
    case("Bieu06_01310.csv", "text in number cells and a negative count, in a CSV",
         {"unit": "01310", "fields": {"HT": {"received_online": None, "pending_overdue": None, "received_total": 12},
                                     "CT": dict(zip(FIGURES, CT))},
          "errors": [[14, "D", "'năm' is a number written in words"], [14, "M", "'-1' is negative"]]},
         write_csv, sheet("01310", formulas=False, cells={(14, 4): "năm", (14, 13): "-1"}))
    case("Bieu06_01311.xlsx", "a Biểu 06 for a period in the future (2042)",
         {"refused": "that period has not ended yet"},
         write_xlsx, sheet("01311", period_line="Kỳ báo cáo: Quý II năm 2042 (Từ ngày 01/04/2042 đến ngày 30/06/2042)"))
    case("Bieu06_01312.xlsx", "a zip bomb disguised as .xlsx: 1 KB whose parts declare 4 GB unpacked",
         {"refused": "refused as a zip bomb, not unpacked"}, forged_zip_bomb)
    case("Bieu06_01313.xlsx", "a text file renamed .xlsx", {"refused": "not a zip archive"},
         lambda p: p.write_text("STT;Lĩnh vực;Tổng số\n1;Hộ tịch;12\n", encoding="utf-8"))
    return expected


def forged_zip_bomb(path: Path) -> None:
    """A tiny .xlsx-looking zip whose central directory says each part unpacks to ~4 GB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + "0" * 1000 + "</worksheet>")
    data = bytearray(path.read_bytes())
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:  # central directory entries: uncompressed size at +24
        struct.pack_into("<I", data, at + 24, 0xFFFFFF00)
        at += 4
    path.write_bytes(bytes(data))


def portal_record(i: int, **overrides) -> dict:
    base = {"MaHoSo": f"G{i * 10:05d}" if i < 100 else f"G{i - 10:05d}", "MaTTHC": "1.000001", "MaLinhVuc": "HT",
            "MaCoQuan": "01279", "KenhThucHien": 2,
            "NgayTiepNhan": f"202404{1 + i % 28:02d}080000", "NgayHenTra": f"202405{1 + i % 28:02d}170000",
            "NgayKetThucXuLy": None, "NgayTra": None, "NgayCapNhat": f"202404{1 + i % 28:02d}090000",
            "TrangThaiHoSo": 4, "PhiLePhi": 0, "DuocThanhToanTrucTuyen": None, "DanhSachGiayToKetQua": "[]",
            "ChuHoSo": f"Nguyễn Văn Riêng{i}", "SoDienThoai": f"0912{i:06d}"}
    return base | overrides


def api(out: Path) -> dict:
    """Pages of one portal source: good records with bad ones among them, and bad pages."""
    out.mkdir(parents=True)
    good = [portal_record(i) for i in range(20)]
    bad = [  # (record, what, expected: "rejected" + text, or the finding's column and text)
        ({k: v for k, v in portal_record(100).items() if k != "MaHoSo"}, "a record without MaHoSo",
         {"rejected": "no MaHoSo"}),
        (portal_record(101, MaHoSo=101), "MaHoSo as a number", {"rejected": "MaHoSo is 101 (a JSON int)"}),
        ("G00102;HT;01279", "a record that is a string, not an object", {"rejected": "a JSON str, not an object"}),
        (portal_record(103, MaHoSo="G00093", NgayTiepNhan="32/13/2024", NgayHenTra="hôm qua"), "garbage dates",
         {"finding": "records.unreadable_value", "columns": ["received_at", "due_at"], "text": "G00093="}),
        (portal_record(104, MaHoSo="G00094", TrangThaiHoSo="chín"), "status as a word",
         {"finding": "records.unreadable_value", "columns": ["status"], "text": "G00094='chín'"}),
        (portal_record(105, MaHoSo="G00095", PhiLePhi="miễn phí"), "fee as a word",
         {"finding": "records.unreadable_value", "columns": ["fee_amount"], "text": "G00095='miễn phí'"}),
        (portal_record(106, MaHoSo="G00096", KenhThucHien=7), "a channel code that does not exist",
         {"finding": "records.unreadable_value", "columns": ["channel"], "text": "G00096='7'"}),
        (portal_record(107, MaHoSo="G00097", NgayKetThucXuLy="20310405100000", TrangThaiHoSo=9,
                       NgayCapNhat="20310405100000"), "dates in the future (finished and updated in 2031)",
         {"finding": "records.date_in_future", "columns": ["finished_at", "updated_at"], "text": "G00097='20310405100000'"}),
    ]
    records = good[:10] + [b[0] for b in bad] + good[10:]
    size = 14
    pages = {str(n + 1): {"total": len(records), "page": n + 1, "data": records[n * size:(n + 1) * size]}
             for n in range((len(records) + size - 1) // size)}
    (out / "portal_pages.json").write_text(json.dumps(pages, ensure_ascii=False, indent=1), encoding="utf-8")
    broken = {
        "data_not_a_list.json": ({"total": 1, "page": 1, "data": {"MaHoSo": "X1"}}, "a page whose data is an object",
                                 "got 'data' is a JSON dict"),
        "top_level_list.json": ([portal_record(1)], "a page that is a bare JSON list", "got a JSON list"),
        "total_text.json": ({"total": "hai mươi", "page": 1, "data": good[:2]}, "a page whose total is text",
                            "'total' is 'hai mươi', expected a count"),
    }
    for name, (body, _, _) in broken.items():
        (out / name).write_text(json.dumps({"1": body}, ensure_ascii=False), encoding="utf-8")
    return {
        "page_size": size, "good_ids": [r["MaHoSo"] for r in good],
        "records": {f"record {records.index(rec) + 1}": {"what": what, "page": records.index(rec) // size + 1,
                                                         "index": records.index(rec) % size + 1, **exp}
                    for rec, what, exp in bad},
        "pages": {name: {"what": what, "error": text} for name, (_, what, text) in broken.items()},
    }


def db(out: Path) -> dict:
    """Rows of an agency database (the sample vendor's table, dates as text)."""
    out.mkdir(parents=True)

    def row(i, **overrides):
        base = {"so_hs": f"XD-{i:05d}", "ma_tthc": "2.000001", "linh_vuc": "XD", "don_vi": "000.00.07.H04",
                "hinh_thuc": "TRUCTUYEN", "ngay_nhan": f"2024-05-{1 + i % 28:02d} 08:00:00",
                "han_tra": f"2024-06-{1 + i % 28:02d} 17:00:00", "ngay_xong": None, "ngay_tra": None,
                "trang_thai": "DANG_XL", "le_phi": 50000, "tt_online": 1, "so_hoa_kq": 0,
                "cap_nhat": f"2024-05-{1 + i % 28:02d} 09:00:00", "nguoi_nop": f"Trần Thị Kín{i}", "cccd": f"0011{i:08d}"}
        return base | overrides

    good = [row(i) for i in range(15)]
    bad = [
        (row(100, so_hs=None), "a NULL dossier id", {"rejected": "so_hs NULL"}),
        (row(101, so_hs="  "), "an empty dossier id", {"rejected": "so_hs '  '"}),
        (row(102, so_hs="XB-00102", ngay_nhan="không rõ"), "text where the received date is expected",
         {"finding": "records.unreadable_value", "columns": ["received_at"], "text": "XB-00102='không rõ'"}),
        (row(103, so_hs="XB-00103", ngay_nhan="02/05/2024", han_tra="hạn 15 ngày"),
         "dates in another format and a due date as words",
         {"finding": "records.unreadable_value", "columns": ["received_at", "due_at"], "text": "XB-00103="}),
        (row(104, so_hs="XB-00104", trang_thai="HUY_BO"), "an unknown status code",
         {"finding": "records.unreadable_value", "columns": ["status"], "text": "XB-00104='HUY_BO'"}),
        (row(105, so_hs="XB-00105", hinh_thuc="FAX"), "an unknown channel code",
         {"finding": "records.unreadable_value", "columns": ["channel"], "text": "XB-00105='FAX'"}),
        (row(106, so_hs="XB-00106", le_phi="năm mươi nghìn"), "text in the fee column",
         {"finding": "records.unreadable_value", "columns": ["fee_amount"], "text": "XB-00106='năm mươi nghìn'"}),
        (row(107, so_hs="XB-00107", ngay_xong="2031-05-02 10:00:00", trang_thai="XONG",
             cap_nhat="2031-05-02 10:00:00"), "dates in the future (finished and updated in 2031)",
         {"finding": "records.date_in_future", "columns": ["finished_at", "updated_at"], "text": "XB-00107="}),
        (row(108, so_hs="XB-00108", han_tra="2024-04-01 17:00:00"), "a due date before the received date",
         {"check": "records.due_before_received", "text": "XB-00108"}),
        (row(109, so_hs="XB-00109", linh_vuc="ZZ"), "a field of work that does not exist",
         {"check": "records.unknown_field", "text": "XB-00109"}),
    ]
    rows = good[:7] + [b[0] for b in bad] + good[7:]
    (out / "hs_hoso_rows.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"good_ids": [r["so_hs"] for r in good],
            "rows": {f"row {rows.index(r) + 1}": {"what": what, **exp} for r, what, exp in bad}}


def build() -> dict:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    expected = {"spreadsheets": spreadsheets(OUT / "spreadsheets"), "api": api(OUT / "api"), "db": db(OUT / "db")}
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return expected


if __name__ == "__main__":
    e = build()
    print(f"{len(e['spreadsheets'])} files, {len(e['api']['records']) + len(e['api']['pages'])} API inputs, "
          f"{len(e['db']['rows'])} database rows in {OUT}")
