"""Writes tests/data/real_shapes/corpus.csv (issue 17): Biểu 06 figures in the shapes real provincial
and district reports and press articles print them (merged early-or-on-time, new receipts, direct
and postal apart, figures the form lacks, number forms, periods off a province's convention),
each row with the wording it stands for and the findings `tthc validate --province all
--period-convention any` must give it (`expect`: check:severity, space-separated, as a set).
The wording follows public reports; the units are real codes; the numbers are invented.

    .venv/bin/python tests/data/make_real_shapes_corpus.py
"""
from __future__ import annotations

import csv
from pathlib import Path

from tthc.form import REPORTED_FIGURES

OUT = Path(__file__).parent / "real_shapes" / "corpus.csv"
HEADER = ["case", "wording", "expect", "unit_code", "parent_code", "field_code", "period_start", "period_end",
          *REPORTED_FIGURES]
UNCHECKED = "identity.unchecked:info"
APPROX = "identity.balance_approximate:info"
DIAG = "diagnosis.typing_error:info"


def full(online, direct, carried, early, on_time, late, within, overdue, returned) -> dict:
    """Every figure of the form, consistent."""
    assert online + direct + carried == early + on_time + late + within + overdue + returned
    return dict(received_total=online + direct + carried, received_online=online, received_direct_postal=direct,
                carried_over=carried, resolved_total=early + on_time + late, resolved_early=early,
                resolved_on_time=on_time, resolved_late=late, pending_total=within + overdue,
                pending_within_due=within, pending_overdue=overdue, returned_withdrawn=returned)


ROWS = [
    # ---- early and on time merged ("đúng và trước hạn", "trả sớm và đúng hạn", "đúng hạn" including early)
    ("m01", "tiếp nhận 1.245.678 hồ sơ; đã giải quyết 1.198.004, trong đó đúng và trước hạn 1.185.321, trễ hạn 12.683",
     [UNCHECKED, APPROX], "01", "", "2022-12-15", "2023-12-14",
     dict(received_total="1.245.678", resolved_total="1.198.004", resolved_early_on_time="1.185.321",
          resolved_late="12.683", pending_total="47.674")),
    ("m02", "tỉnh: đã giải quyết 48.238, đúng và trước hạn 47.901, quá hạn 335 (các huyện cộng lại 48.236)",
     ["identity.resolved_merged:critical", DIAG, UNCHECKED, "rollup.units:warning"], "22", "", "2024-04-01",
     "2024-06-30", dict(received_total=52310, received_online=38102, received_direct_postal=9871, carried_over=4337,
                        resolved_total=48238, resolved_early_on_time=47901, resolved_late=335)),
    ("m02a", "Thành phố Hạ Long: giải quyết 27.905, đúng và trước hạn 27.700, quá hạn 205", [UNCHECKED], "193", "22",
     "", "2024-04-01", "2024-06-30",
     dict(received_total=30120, received_online=22010, received_direct_postal=6002, carried_over=2108,
          resolved_total=27905, resolved_early_on_time=27700, resolved_late=205)),
    ("m02b", "Thành phố Móng Cái: giải quyết 20.331, đúng và trước hạn 20.201, quá hạn 130", [UNCHECKED], "194", "22",
     "", "2024-04-01", "2024-06-30",
     dict(received_total=22190, received_online=16092, received_direct_postal=3869, carried_over=2229,
          resolved_total=20331, resolved_early_on_time=20201, resolved_late=130)),
    ("m03", "đã giải quyết 405.112 hồ sơ, đúng hạn 404.980 (kể cả trước hạn), quá hạn 132; đang giải quyết 7.418",
     [UNCHECKED, APPROX], "38", "", "2019-01-01", "2019-12-31",
     dict(received_total=412530, resolved_total=405112, resolved_early_on_time=404980, resolved_late=132,
          pending_total=7418, pending_within_due=7300, pending_overdue=118)),
    ("m04", "trả sớm và đúng hạn 60.817 (trước hạn 41.203, đúng hạn 19.668), trễ hạn 374, tổng giải quyết 61.245",
     ["identity.early_on_time:critical", "identity.resolved_merged:critical", DIAG, UNCHECKED, APPROX], "40", "",
     "2024-07-01", "2024-09-30",
     dict(received_total=65110, resolved_total=61245, resolved_early_on_time=60817, resolved_early=41203,
          resolved_on_time=19668, resolved_late=374, pending_total=3865)),
    ("m05", "tiếp nhận 28.406 hồ sơ, giải quyết 27.010, đạt 99,8% đúng và trước hạn (26.956), trễ hạn 54",
     [UNCHECKED], "48", "", "2022-05-01", "2022-05-31",
     dict(received_total=28406, resolved_total=27010, resolved_early_on_time=26956, resolved_late=54)),
    ("m06", "thành phố: giải quyết 15.420, đúng và trước hạn 15.308, quá hạn 40 (các quận cộng lại 15.380)",
     ["identity.resolved_merged:critical", DIAG, UNCHECKED, "rollup.units:warning"], "92", "", "2020-12-15",
     "2021-03-14", dict(received_total=16000, resolved_total=15420, resolved_early_on_time=15308, resolved_late=40)),
    ("m06a", "Quận Ninh Kiều: giải quyết 9.025, đúng và trước hạn 9.000, quá hạn 25", [UNCHECKED], "916", "92", "",
     "2020-12-15", "2021-03-14",
     dict(received_total=9400, resolved_total=9025, resolved_early_on_time=9000, resolved_late=25)),
    ("m06b", "Quận Ô Môn: giải quyết 6.395, đúng và trước hạn 6.380, quá hạn 15", [UNCHECKED], "917", "92", "",
     "2020-12-15", "2021-03-14",
     dict(received_total=6600, resolved_total=6395, resolved_early_on_time=6380, resolved_late=15)),
    # ---- new receipts, carried over, direct and postal apart, figures the form lacks
    ("n01", "tiếp nhận mới 45.112 (trực tuyến 30.500, trực tiếp và bưu chính 14.612), kỳ trước chuyển sang 3.204",
     [], "27", "", "2024-03-15", "2024-06-14",
     {**full(30500, 14612, 3204, 30000, 14500, 400, 3250, 50, 116), "received_new": 45112}),
    ("n02", "tổng số 73.450 hồ sơ, trong đó tiếp nhận mới 70.120, kỳ trước chuyển qua 3.420",
     ["identity.received_new:critical", "identity.balance:warning", DIAG, UNCHECKED, APPROX], "31", "",
     "2022-01-01", "2022-06-30",
     dict(received_total=73450, received_new=70120, carried_over=3420, resolved_total=70000, pending_total=3540)),
    ("n03", "tiếp nhận mới 20.626: trực tuyến 12.004, trực tiếp 8.210, qua bưu chính công ích 412", [UNCHECKED],
     "26", "", "2019-10-01", "2019-12-31",
     dict(received_total=21726, received_new=20626, received_online=12004, received_direct_postal=8622,
          received_direct=8210, received_postal=412, carried_over=1100)),
    ("n04", "nhận trực tiếp 5.120, qua bưu chính 96, cộng trực tiếp và bưu chính 5.261",
     ["identity.direct_postal:critical", "identity.new_channels:critical", "identity.received:critical", DIAG,
      UNCHECKED], "10", "", "2018-04-01", "2018-06-30",
     dict(received_total=15016, received_new=14216, received_online=9000, received_direct_postal=5261,
          received_direct=5120, received_postal=96, carried_over=800)),
    ("n05", "chờ bổ sung hồ sơ 1.204, từ chối giải quyết 87, trả lại, rút hồ sơ 310", [], "74", "", "2024-10-01",
     "2024-12-31", {**full(61200, 20400, 2900, 50100, 30300, 410, 3100, 280, 310), "pending_paused": 1204,
                    "refused": 87}),
    ("n06", "đang giải quyết 2.013, trong đó chờ bổ sung 640; dừng xử lý, rút 95", [], "75", "", "2021-12-15",
     "2022-06-14", {**full(40110, 9800, 1870, 30420, 18900, 352, 1950, 63, 95), "pending_paused": 640,
                    "received_new": 49910}),
    ("n07", "tiếp nhận mới 9.870, tổng nhận 10.315 nhưng kỳ trước chuyển sang 545",
     ["identity.received_new:critical", DIAG, UNCHECKED], "82", "", "2023-01-01", "2023-03-31",
     dict(received_total=10315, received_new=9870, carried_over=545)),
    # ---- number forms
    ("f01", "English-locale sheet: 509,772 received, 498,110 resolved, 11,662 pending",
     ["schema.count_reading:warning", UNCHECKED, APPROX], "79", "", "2023-01-01", "2023-12-31",
     dict(received_total="509,772", resolved_total="498,110", pending_total="11,662")),
    ("f02", "tiếp nhận 140. 683 hồ sơ, giải quyết 139.907", ["schema.count_reading:warning", UNCHECKED, APPROX], "96",
     "", "2021-01-01", "2021-03-31", dict(received_total="140. 683", resolved_total="139.907", pending_total="776")),
    ("f03", "quá hạn 09 hồ sơ, đang giải quyết quá hạn 012", ["schema.count_reading:warning", UNCHECKED, APPROX], "02", "",
     "2020-07-01", "2020-09-30",
     dict(received_total=1204, resolved_total=1150, resolved_early_on_time=1141, resolved_late="09",
          pending_total=54, pending_within_due=42, pending_overdue="012")),
    ("f04", "quá hạn: tám hồ sơ", ["schema.count_approximate:critical", UNCHECKED], "62", "", "2022-01-01",
     "2022-03-31", dict(resolved_total=2310, resolved_early_on_time=2302, resolved_late="tám")),
    ("f05", "tiếp nhận gần 27.000 hồ sơ, đã giải quyết 26.512", ["schema.count_approximate:critical", UNCHECKED],
     "64", "", "2023-04-01", "2023-06-30", dict(received_total="gần 27.000", resolved_total=26512)),
    ("f06", "hiện còn trên 7.600 hồ sơ đang giải quyết", ["schema.count_approximate:critical", UNCHECKED], "60", "",
     "2024-01-01", "2024-06-30", dict(received_total=88410, resolved_total=80700, pending_total="trên 7.600")),
    ("f07", "1,234,567 dossiers received in the year", ["schema.count_reading:warning", UNCHECKED], "94", "",
     "2024-01-01", "2024-12-31", dict(received_total="1,234,567")),
    ("f08", "đã giải quyết 12 345 hồ sơ", ["schema.count_reading:warning", UNCHECKED], "68", "", "2018-01-01",
     "2018-03-31", dict(received_total=13020, resolved_total="12 345")),
    ("f09", "tỷ lệ 12,5 (nhầm cột tỷ lệ vào cột số hồ sơ)", ["schema.count_unreadable:critical", UNCHECKED], "15", "",
     "2019-04-01", "2019-06-30", dict(received_total=3400, resolved_late="12,5")),
    # ---- periods off a province's convention, and other lengths
    ("p01", "quý I: từ ngày 01/12/2023 đến ngày 29/02/2024", ["period.convention:warning"], "42", "", "2023-12-01",
     "2024-02-29", full(20100, 6300, 1200, 15200, 10900, 150, 1100, 40, 210)),
    ("p02", "tháng 4: từ ngày 21/3/2024 đến ngày 20/4/2024", ["period.convention:warning"], "44", "", "21/03/2024",
     "20/04/2024", full(7000, 2100, 640, 5800, 3100, 40, 760, 0, 40)),
    ("p03", "quý II theo Nghị định 09/2019: 15/3 – 14/6/2021", [], "25", "", "2021-03-15", "2021-06-14",
     full(30500, 8100, 2400, 21000, 16800, 300, 2780, 20, 100)),
    ("p04", "6 tháng đầu năm 2020", [], "19", "", "2020-01-01", "2020-06-30",
     full(52000, 12000, 3100, 41000, 21500, 600, 3800, 100, 100)),
    ("p05", "năm 2019 (từ 15/12/2018 đến 14/12/2019)", [], "24", "", "2018-12-15", "2019-12-14",
     full(210000, 40500, 5200, 180000, 67000, 900, 7300, 200, 300)),
    ("p06", "tháng 10/2023 (từ 15/9 đến 14/10)", [], "20", "", "2023-09-15", "2023-10-14",
     full(5100, 1200, 420, 4200, 2000, 20, 480, 10, 10)),
    ("p07", "năm 2017", [], "72", "", "2017-01-01", "2017-12-31",
     full(150000, 60000, 2500, 120000, 88000, 1500, 2900, 100, 0)),
    ("p08", "quý III/2025, tỉnh Hưng Yên sau sắp xếp", [], "33", "", "2025-07-01", "2025-09-30",
     full(98000, 31000, 5200, 80000, 46000, 800, 6900, 300, 200)),
    ("p09", "quý I/2026", [], "12", "", "2026-01-01", "2026-03-31",
     full(12000, 3000, 900, 9000, 5900, 100, 870, 20, 10)),
    ("p10", "quý I/2026 theo Nghị định 09/2019 (15/12/2025 – 14/3/2026)", [], "56", "", "2025-12-15", "2026-03-14",
     full(40000, 9000, 2100, 30000, 18200, 300, 2450, 50, 100)),
    ("p11", "quý IV/2025 của tỉnh An Giang cũ (đã hợp nhất từ 01/7/2025)", ["unit.known:critical"], "89", "",
     "2025-10-01", "2025-12-31", full(30000, 7000, 1500, 22000, 14000, 200, 2150, 50, 100)),
    ("p12", "quý I/2024 đến ngày 30/3/2024", ["period.convention:warning"], "14", "", "2024-01-01", "2024-03-30",
     full(18000, 4100, 700, 12000, 10100, 90, 580, 10, 20)),
    # ---- typing errors in the form's own columns
    ("t01", "trước hạn gõ 2.519 thay vì 2.509 (quá hạn 60 gõ thay 50 cũng giải thích được)",
     ["identity.resolved:critical", DIAG], "11", "", "2024-01-01", "2024-03-31",
     {**full(6100, 2200, 310, 2509, 5400, 60, 560, 11, 70), "resolved_early": 2519}),
    ("t02", "trả lại, rút 1.070 thay vì 170", ["identity.balance:warning", DIAG], "20", "", "2021-04-01",
     "2021-06-30", {**full(8800, 2100, 500, 7000, 3400, 60, 760, 10, 170), "returned_withdrawn": 1070}),
    ("t03", "đang giải quyết quá hạn 57 thay vì 75 (cân đối (3) = (7) + (11) + (14) loại trừ sửa tổng)",
     ["identity.pending:critical", DIAG], "36", "", "2019-07-01", "2019-09-30",
     {**full(9900, 3000, 640, 7600, 4200, 70, 1300, 75, 295), "pending_overdue": 57}),
    ("t04", "kỳ trước chuyển sang 1.243 thay vì 1.234", ["identity.received:critical", DIAG], "34", "", "2020-01-01",
     "2020-03-31", {**full(10400, 3800, 1234, 9000, 5300, 84, 950, 40, 60), "carried_over": 1243}),
    ("t05", "đã giải quyết 1.380 (trước hạn 1.000, đúng hạn 390), không ghi số quá hạn",
     ["identity.resolved:critical", DIAG, UNCHECKED], "49", "", "2022-07-01", "2022-09-30",
     dict(resolved_total=1380, resolved_early=1000, resolved_on_time=390)),
    ("t06", "tỉnh: đã giải quyết 1.380 (trước hạn 1.000, đúng hạn 390), không ghi quá hạn; các huyện cộng lại 1.390",
     ["identity.resolved:critical", DIAG, UNCHECKED, "rollup.units:warning"], "51", "", "2022-07-01", "2022-09-30",
     dict(resolved_total=1380, resolved_early=1000, resolved_on_time=390)),
    ("t06a", "Thành phố Quảng Ngãi: giải quyết 790 (trước hạn 600, đúng hạn 190, quá hạn 0)", [UNCHECKED], "522",
     "51", "", "2022-07-01", "2022-09-30",
     dict(resolved_total=790, resolved_early=600, resolved_on_time=190, resolved_late=0)),
    ("t06b", "Huyện Bình Sơn: giải quyết 600 (trước hạn 400, đúng hạn 200, quá hạn 0)", [UNCHECKED], "524", "51", "",
     "2022-07-01", "2022-09-30", dict(resolved_total=600, resolved_early=400, resolved_on_time=200,
                                      resolved_late=0)),
    ("t07", "báo cáo đủ cột theo Biểu 06", [], "52", "", "2020-06-15", "2020-09-14",
     full(22000, 5100, 800, 16000, 10800, 120, 900, 30, 50)),
    ("t08", "báo cáo đủ cột, có cột trả lại, rút, dừng xử lý", [], "54", "", "2018-10-01", "2018-12-31",
     full(11800, 4100, 420, 10200, 5500, 36, 520, 14, 50)),
    ("t09", "trực tuyến gõ 13.802 thay vì 3.802, tổng nhận tính theo công thức",
     ["identity.balance:warning", DIAG], "46", "", "2023-07-01", "2023-09-30",
     {**full(3802, 6200, 900, 6000, 4300, 50, 500, 12, 40), "received_online": 13802, "received_total": 20902}),
    ("t10", "tiếp nhận mới gõ 3.510 thay vì 3.150; chờ bổ sung 44", ["identity.received_new:critical",
                                                                      "identity.new_channels:critical", DIAG], "86",
     "", "2024-07-01", "2024-09-30",
     {**full(2000, 1150, 240, 1900, 1200, 30, 230, 10, 20), "received_new": 3510, "pending_paused": 44}),
    ("t11", "đúng và trước hạn 8.765 thay vì 8.756, các cột khác đủ", ["identity.early_on_time:critical",
                                                                       "identity.resolved_merged:critical", DIAG],
     "95", "", "2017-04-01", "2017-06-30",
     {**full(7100, 2400, 520, 5006, 3750, 40, 1180, 14, 30), "resolved_early_on_time": 8765}),
]


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in ROWS:
            case, wording, expect, unit, parent, *field, start, end, figures = row  # field: "" when left out
            field = field[0] if field else ""
            unknown = set(figures) - set(REPORTED_FIGURES)
            assert not unknown, (case, unknown)
            writer.writerow([case, wording, " ".join(sorted(set(expect))), unit, parent, field, start, end,
                             *[figures.get(name, "") for name in REPORTED_FIGURES]])


if __name__ == "__main__":
    main()
