"""Decision 766/QĐ-TTg indicators that dossier data allows (domain.md §6). Reports disagree
on denominators, so every rate carries its numerator, its denominator and the denominator's name.
The record counts come from the warehouse (warehouse.publish.record_counts)."""
from __future__ import annotations

import pandas as pd

from tthc.form import INDICATOR_NAMES
from tthc.model import INDICATOR_COLUMNS


# (indicator, name, numerator, denominator, denominator name); figures of the published Biểu 06
FROM_FIGURES = [
    ("on_time_rate", INDICATOR_NAMES["on_time_rate"],
     ("resolved_early", "resolved_on_time", "pending_within_due"), ("resolved_total", "pending_total"),
     "hồ sơ đã giải quyết và đang giải quyết trong kỳ (resolved_total + pending_total)"),
    ("online_share", INDICATOR_NAMES["online_share"],
     ("received_online",), ("received_online", "received_direct_postal"),
     "hồ sơ tiếp nhận mới trong kỳ (received_online + received_direct_postal)"),
]
# from dossier records only: self-reported forms do not carry these counts
FROM_RECORDS = [
    ("online_payment_share", INDICATOR_NAMES["online_payment_share"], "paid_online", "fee_dossiers",
     "hồ sơ có phí, lệ phí tiếp nhận trong kỳ"),
    ("digitisation_share", INDICATOR_NAMES["digitisation_share"], "results_digitised", "resolved_records",
     "hồ sơ đã giải quyết trong kỳ (theo dữ liệu hồ sơ)"),
]

def _rate(numerator, denominator):
    return None if denominator in (None, 0) or pd.isna(denominator) else round(float(numerator) / float(denominator), 6)


def indicators(units: pd.DataFrame, unit_counts: pd.DataFrame, province: dict, province_counts: dict) -> pd.DataFrame:
    """`units`: published unit rows (figures, unit_level, basis); `unit_counts`: record counts per
    unit; `province`: the province roll-up figures and code; `province_counts`: its record counts
    (each dossier once)."""
    rows = []
    counts = unit_counts.set_index("unit_code") if len(unit_counts) else pd.DataFrame()
    subjects = [(u.unit_code, u.unit_level, u._asdict(), u.basis) for u in units.itertuples(index=False)]
    subjects.append((province["province_code"], "province", province, "mixed"))
    # beside every province-level share, the units it covers
    published, with_records = len(units), int(counts.index.isin(units["unit_code"]).sum()) if len(counts) else 0
    coverage = {"figures": f"; toàn tỉnh: {published} đơn vị được công bố",
                "records": f"; toàn tỉnh: chỉ {with_records}/{published} đơn vị được công bố có dữ liệu từng hồ sơ"}
    for code, level, figures, basis in subjects:
        for indicator, name, num, den, den_name in FROM_FIGURES:
            if any(pd.isna(figures.get(c)) for c in (*num, *den)):
                continue
            n, d = sum(int(figures[c]) for c in num), sum(int(figures[c]) for c in den)
            den_name = den_name + (coverage["figures"] if level == "province" else "")
            rows.append([code, level, indicator, name, n, d, den_name, _rate(n, d), basis])
        record = province_counts if level == "province" else (
            counts.loc[code].to_dict() if code in counts.index else None)
        if record is None or (level != "province" and basis != "records"):
            continue
        for indicator, name, num, den, den_name in FROM_RECORDS:
            n, d = int(record.get(num) or 0), int(record.get(den) or 0)
            den_name = den_name + (coverage["records"] if level == "province" else "")
            rows.append([code, level, indicator, name, n, d, den_name, _rate(n, d), "records"])
    return pd.DataFrame(rows, columns=INDICATOR_COLUMNS)
