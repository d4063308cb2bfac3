"""Validation benchmark (issue 4): record-level checks on N dossier records (SQL in DuckDB over
Parquet, then GX on the per-unit counts), and the Biểu 06 suite with the typing-error diagnosis
on 3,321 units × 8 quarters × 6 fields. Goal: 10M records in under 60 s on a 2-core machine.

    .venv/bin/python bench/validate.py [--records 1000000 10000000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tthc.form import FIGURES
from tthc.periods import quarter  # noqa: E402
from validations.bieu06_rows import bieu06_suite, diagnosis_findings, prepare_rows, row_findings  # noqa: E402
from validations.dossier_records import dossier_records_suite, record_counts, record_findings  # noqa: E402
from validations.gx import GxSession  # noqa: E402

UNITS, QUARTERS, FIELDS = 3321, 8, 6
PERIOD = quarter("2025-Q3", "calendar_quarter")
FIELD_CODES = ["HT", "CT", "DD", "BTXH", "NCC", "NN"]


def make_records(path: Path, n: int) -> None:
    """N dossiers of 3,321 units with a few broken rules, written by DuckDB (no pandas frame)."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT CASE WHEN i % 100003 = 0 THEN 'agency_db' ELSE 'portal_dvc' END AS source_id,
                   'HS' || lpad(CASE WHEN i % 100003 = 1 THEN (i - 1)::VARCHAR ELSE i::VARCHAR END, 10, '0') AS dossier_id,
                   CASE WHEN i % 50021 = 0 THEN 'x' ELSE '1.00' || lpad((i % 9000)::VARCHAR, 4, '0') END AS procedure_code,
                   {FIELD_CODES!r}[1 + (i % 6)::INT] AS field_code,
                   lpad((10000 + i % {UNITS})::VARCHAR, 5, '0') AS unit_code,
                   CASE WHEN i % 3 = 0 THEN 'online' ELSE 'in_person' END AS channel,
                   TIMESTAMP '2025-07-01 08:00:00' + to_seconds((i * 7919) % 7776000) AS received_at,
                   received_at + INTERVAL 10 DAY - CASE WHEN i % 70001 = 0 THEN INTERVAL 20 DAY ELSE INTERVAL 0 DAY END AS due_at,
                   CASE WHEN i % 5 = 0 THEN NULL ELSE received_at + to_seconds((i * 31) % 1500000) END AS finished_at,
                   NULL::TIMESTAMP AS returned_at,
                   (CASE WHEN i % 5 = 0 THEN 4 ELSE 10 END)::SMALLINT AS status,
                   0::BIGINT AS fee_amount, false AS paid_online, false AS results_digitised,
                   received_at AS updated_at
            FROM range({n}) t(i)
        ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
    """)


def bench_records(n: int, session: GxSession) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dossiers.parquet"
        t = time.perf_counter()
        make_records(path, n)
        generated = time.perf_counter() - t
        t = time.perf_counter()
        counts = record_counts(path, PERIOD, FIELD_CODES)
        sql = time.perf_counter() - t
        counts["row_id"] = range(len(counts))
        failed = session.validate(counts, dossier_records_suite())
        findings = record_findings(counts, failed, PERIOD)
        total = time.perf_counter() - t
    return {"records": n, "generate_s": round(generated, 1), "sql_checks_s": round(sql, 1),
            "validate_s": round(total, 1), "unit_rows": len(counts), "findings": len(findings)}


def make_bieu06(rng: np.random.Generator) -> pd.DataFrame:
    rows = UNITS * QUARTERS * FIELDS
    parts = {name: rng.poisson(lam, rows) for name, lam in (
        ("resolved_early", 120), ("resolved_on_time", 60), ("resolved_late", 15), ("pending_within_due", 20),
        ("pending_overdue", 5), ("returned_withdrawn", 4), ("received_online", 110), ("received_direct_postal", 90))}
    frame = pd.DataFrame(parts)
    frame["resolved_total"] = frame[["resolved_early", "resolved_on_time", "resolved_late"]].sum(axis=1)
    frame["pending_total"] = frame[["pending_within_due", "pending_overdue"]].sum(axis=1)
    frame["received_total"] = frame[["resolved_total", "pending_total", "returned_withdrawn"]].sum(axis=1)
    frame["carried_over"] = frame["received_total"] - frame["received_online"] - frame["received_direct_postal"]
    frame["received_direct_postal"] += np.minimum(frame["carried_over"], 0)
    frame["received_online"] = frame["received_total"] - frame["received_direct_postal"] - frame["carried_over"].clip(lower=0)
    frame["carried_over"] = frame["carried_over"].clip(lower=0)
    broken = rng.random(rows) < 0.03  # 3 % of rows with one figure typed ×10
    columns = rng.integers(0, len(FIGURES), rows)
    for i in np.flatnonzero(broken):
        name = FIGURES[columns[i]]
        frame.at[i, name] = int(frame.at[i, name]) * 10  # typed ×10
    quarters = [quarter(f"{2024 + q // 4}-Q{q % 4 + 1}", "calendar_quarter") for q in range(QUARTERS)]
    index = np.arange(rows)
    frame["unit_code"] = [f"{10000 + u:05d}" for u in (index // (QUARTERS * FIELDS))]
    frame["field_code"] = [FIELD_CODES[i % FIELDS] for i in index]
    q = (index // FIELDS) % QUARTERS
    frame["period_start"] = [quarters[i].start for i in q]
    frame["period_end"] = [quarters[i].end for i in q]
    frame["source_id"], frame["basis"], frame["landed_file"] = "commune_spreadsheets", "self_reported", None
    return frame


def bench_bieu06(session: GxSession) -> dict:
    rows = make_bieu06(np.random.default_rng(4))
    units = sorted(set(rows["unit_code"]))
    t = time.perf_counter()
    frame = prepare_rows(rows, units_in_force=units, field_codes=FIELD_CODES, convention="calendar_quarter")
    failed = session.validate(frame, bieu06_suite())
    findings = row_findings(frame, failed, None)
    gx_done = time.perf_counter() - t
    diagnosed, _ = diagnosis_findings(frame, None)
    total = time.perf_counter() - t
    fixed = sum(f.suggested_fix is not None for f in diagnosed)
    return {"rows": len(rows), "units": UNITS, "quarters": QUARTERS, "fields": FIELDS,
            "gx_rows_s": round(gx_done, 1), "with_diagnosis_s": round(total, 1), "findings": len(findings),
            "rows_diagnosed": len(diagnosed), "single_fix": fixed, "checked_on": date.today().isoformat()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    session = GxSession()
    results = {"cpus": os.cpu_count(), "records": [], "bieu06": None}
    for n in args.records:
        results["records"].append(bench_records(n, session))
        print(json.dumps(results["records"][-1]), flush=True)
    results["bieu06"] = bench_bieu06(session)
    print(json.dumps(results["bieu06"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
