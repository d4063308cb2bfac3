"""Canonical Biểu 06 CSV files for `tthc validate`: a small file of real units with a seeded
defect of every kind the offline validation reports (its findings are kept as golden outputs in
tests/data/validate_offline/), and a large file written with pyarrow for the memory bound."""
from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tthc.form import FIGURES

HEADER = ["unit_code", "period_start", "period_end", "field_code", *FIGURES]
PERIODS = [(date(2025, 1, 1), date(2025, 3, 31)), (date(2025, 4, 1), date(2025, 6, 30))]
DISTRICTS = ("040", "042", "043", "045")
FIELDS = ("HT", "CT", "DD", "BTXH", "NCC", "NN")


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


def write_large_csv(path: Path, target_bytes: int, seed: int = 7, broken_every: int = 997) -> int:
    """A canonical CSV of about `target_bytes`, written with pyarrow: one block of 20,000 synthetic
    units (not in the province's list: every row is `unit.known`) × 3 fields × 8 quarters whose
    carried-over figures continue the previous quarter, one row in `broken_every` with a typing
    error, written again under new unit codes until the file is large enough. Returns the rows."""
    rng = np.random.default_rng(seed)
    units, fields, quarters = 20_000, FIELDS[:3], 8
    starts = [date(2024 + q // 4, 1 + 3 * (q % 4), 1).isoformat() for q in range(quarters)]
    ends = ["2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31", "2025-03-31", "2025-06-30", "2025-09-30",
            "2025-12-31"]
    block: dict[str, list] = {c: [] for c in HEADER}
    for field in fields:
        pending = rng.integers(0, 50, units)
        for q in range(quarters):
            carried = pending
            online, direct = rng.integers(0, 400, units), rng.integers(0, 300, units)
            received = online + direct + carried
            resolved = (received * rng.random(units)).astype(np.int64)
            pending = received - resolved
            early = (resolved * rng.random(units)).astype(np.int64)
            late = ((resolved - early) * rng.random(units)).astype(np.int64)
            overdue = (pending * rng.random(units)).astype(np.int64)
            figures = [received, online, direct, carried, resolved, early, resolved - early - late, late,
                       pending, pending - overdue, overdue, np.zeros(units, np.int64)]
            block["period_start"].append(np.full(units, starts[q]))
            block["period_end"].append(np.full(units, ends[q]))
            block["field_code"].append(np.full(units, field))
            for name, values in zip(FIGURES, figures):
                block[name].append(values)
    size = units * len(fields) * quarters
    columns = {c: np.concatenate(v) for c, v in block.items() if v}
    columns["received_total"][np.arange(size) % broken_every == 0] += 10
    arrays = {c: pa.array(v.astype(str)) for c, v in columns.items()}
    unit_index = np.tile(np.arange(units), len(fields) * quarters)
    rows, base = 0, 0
    schema = pa.schema([(c, pa.string()) for c in HEADER])
    with pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        while rows == 0 or path.stat().st_size < target_bytes:
            codes = pa.array(np.char.add("U", np.char.zfill((unit_index + base).astype(str), 7)))
            writer.write_table(pa.table({c: codes if c == "unit_code" else arrays[c] for c in HEADER}, schema=schema))
            rows, base = rows + size, base + units
    return rows
