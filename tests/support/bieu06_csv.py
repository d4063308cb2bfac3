"""Canonical Biểu 06 CSV files for `tthc validate`: a small file of real units with a seeded
defect of every kind the offline validation reports (its findings are kept as golden outputs in
tests/data/validate_offline/); the large file of the memory bound is simulator/large_csv.py's."""
from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from simulator.large_csv import FIELDS, HEADER, write_large_csv  # noqa: F401
from tthc.form import FIGURES

PERIODS = [(date(2025, 1, 1), date(2025, 3, 31)), (date(2025, 4, 1), date(2025, 6, 30))]
DISTRICTS = ("040", "042", "043", "045")


def _consistent(rng: random.Random, carried: int) -> dict[str, int]:
    online, direct = rng.randint(0, 400), rng.randint(0, 300)
    received = online + direct + carried
    returned = rng.randint(0, 3) if received > 3 else 0
    resolved = rng.randint(0, received - returned)
    pending = received - returned - resolved
    early = rng.randint(0, resolved)
    late = rng.randint(0, resolved - early)
    overdue = rng.randint(0, pending)
    return dict(received_total=received, received_online=online, received_direct_postal=direct, carried_over=carried,
                resolved_total=resolved, resolved_early=early, resolved_on_time=resolved - early - late,
                resolved_late=late, pending_total=pending, pending_within_due=pending - overdue,
                pending_overdue=overdue, returned_withdrawn=returned)


def _sum(rows: list[dict]) -> dict[str, int]:
    return {name: sum(r[name] for r in rows) for name in FIGURES}


def seeded_rows(units, seed: int = 2024) -> list[dict]:
    """About 1,000 rows: communes of three districts, the districts and the province, six fields and
    a total row each, two quarters (the second carrying over the first's pending); parents are
    the sums of their units. Then one seeded defect of each kind, and the rows shuffled so that
    related rows are far apart."""
    rng = random.Random(seed)
    communes = {d: sorted(units.loc[(units["parent_code"] == d) & (units["level"] == "commune"), "unit_code"])
                for d in DISTRICTS}
    rows, pending = [], {}
    for start, end in PERIODS:
        by_unit: dict[str, dict[str, dict]] = {}
        for district, codes in communes.items():
            for code in codes:
                by_unit[code] = {f: _consistent(rng, pending.get((code, f), rng.randint(0, 20))) for f in FIELDS}
            by_unit[district] = {f: _sum([by_unit[c][f] for c in codes]) for f in FIELDS}
        by_unit["04"] = {f: _sum([by_unit[d][f] for d in DISTRICTS]) for f in FIELDS}
        for code, fields in by_unit.items():
            for field, figures in fields.items():
                rows.append({"unit_code": code, "period_start": start.isoformat(), "period_end": end.isoformat(),
                             "field_code": field, **figures})
                pending[(code, field)] = figures["pending_total"]
            rows.append({"unit_code": code, "period_start": start.isoformat(), "period_end": end.isoformat(),
                         "field_code": "", **_sum(list(fields.values()))})
    q2 = [i for i, r in enumerate(rows) if r["period_start"] == "2025-04-01" and r["field_code"]
          and r["unit_code"] not in (*DISTRICTS, "04")]
    picks = rng.sample(q2, 40)

    def seed_defect(k: int, edit) -> None:
        edit(rows[picks[k]])

    for k in range(8):  # typing errors: one digit of one figure
        def typo(r, k=k):
            name = FIGURES[(k * 5) % len(FIGURES)]
            r[name] = r[name] + (10 if r[name] % 100 < 90 else -10)
        seed_defect(k, typo)
    seed_defect(8, lambda r: r.update(received_total="12,5"))
    seed_defect(9, lambda r: r.update(resolved_late="abc"))
    seed_defect(10, lambda r: r.update(pending_overdue="-3"))
    seed_defect(11, lambda r: r.update(period_start="31/02/2025"))
    seed_defect(12, lambda r: r.update(unit_code="99999"))
    seed_defect(13, lambda r: r.update(field_code="ZZ"))
    seed_defect(14, lambda r: r.update({name: "" for name in FIGURES}))
    seed_defect(15, lambda r: r.update(unit_code=""))
    seed_defect(16, lambda r: r.update(period_end="2025-06-29"))
    seed_defect(17, lambda r: r.update(carried_over=r["carried_over"] + 1, received_total=r["received_total"] + 1,
                                       pending_total=r["pending_total"] + 1,
                                       pending_within_due=r["pending_within_due"] + 1))
    seed_defect(18, lambda r: r.update(pending_within_due="", pending_overdue=""))
    seed_defect(19, lambda r: r.update(returned_withdrawn=""))
    seed_defect(20, lambda r: r.update(received_total=f"{r['received_total']:,}".replace(",", ".")))
    seed_defect(21, lambda r: r.update(received_online=r["received_online"] + 1000,
                                       received_total=r["received_total"] + 1000))
    district_rows = [i for i, r in enumerate(rows) if r["unit_code"] == "042" and r["field_code"] == "CT"]
    rows[district_rows[-1]]["resolved_early"] += 7
    rows[district_rows[-1]]["resolved_on_time"] -= 7
    total_rows = [i for i, r in enumerate(rows) if r["unit_code"] == "043" and r["field_code"] == ""]
    rows[total_rows[0]]["received_online"] += 3
    rows[total_rows[0]]["received_direct_postal"] -= 3
    rows.append(dict(rows[picks[30]]))  # the same unit, period and field twice
    rng.shuffle(rows)
    return rows


def write_seeded_csv(path: Path, units, seed: int = 2024) -> int:
    rows = seeded_rows(units, seed)
    lines = [",".join(HEADER)] + [",".join(str(r[c]) for c in HEADER) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)
