"""A large canonical Biểu 06 CSV for `tthc validate`'s memory bound (tests/test_validate_stream.py,
bench/validate_files.py): synthetic units, consistent figures, a seeded typing error now and then."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tthc.form import FIGURES

HEADER = ["unit_code", "period_start", "period_end", "field_code", *FIGURES]
FIELDS = ("HT", "CT", "DD", "BTXH", "NCC", "NN")


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
