"""An analyst's session held open on the embedded warehouse does not fail the load: a connection
waits for the file (saying for whom) and goes on when it is released; past the wait it stops
with a message naming the holder, not a DuckDB traceback."""
from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest
import sqlalchemy as sa

from warehouse.db import WarehouseBusy, engine_for


def hold(path, seconds: float) -> subprocess.Popen:
    """Another process with a read-only session on the file, as an analyst's would be."""
    code = (f"import duckdb, time; c = duckdb.connect({str(path)!r}, read_only=True); print('held', flush=True); "
            f"time.sleep({seconds})")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return path


def test_a_held_file_is_waited_for_and_used_once_released(warehouse, monkeypatch, caplog):
    monkeypatch.setenv("TTHC_WAREHOUSE_WAIT_SECONDS", "30")
    holder = hold(warehouse, 2)
    started = time.monotonic()
    try:
        with engine_for(f"duckdb:///{warehouse}") as engine, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
    finally:
        holder.kill()
    assert time.monotonic() - started >= 1
    assert any("is held by" in r.getMessage() and f"PID {holder.pid}" in r.getMessage() for r in caplog.records)


def test_a_file_held_past_the_wait_is_a_clear_refusal(warehouse, monkeypatch):
    monkeypatch.setenv("TTHC_WAREHOUSE_WAIT_SECONDS", "1")
    holder = hold(warehouse, 30)
    try:
        with pytest.raises(WarehouseBusy, match=rf"held by .*PID {holder.pid}.* for more than 1 s"):
            with engine_for(f"duckdb:///{warehouse}") as engine, engine.connect():
                pass
    finally:
        holder.kill()


def test_a_run_waits_for_an_analysts_session_and_publishes(small_sample, tmp_path):
    import json
    import os
    import shutil
    from pathlib import Path

    var = tmp_path / "var"
    shutil.copytree(small_sample, var / "sample")
    sample = json.loads((small_sample / "sample.json").read_text(encoding="utf-8"))
    env = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false", "TTHC_WAREHOUSE_WAIT_SECONDS": "120"}
    env.pop("TTHC_WAREHOUSE_URL", None)
    command = [str(Path(sys.executable).parent / "tthc"), "run", "--sample", "--seed", str(sample["seed"]),
               "--scale", str(sample["scale"])]
    first = subprocess.run([*command, "--period", "2025-Q1"], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    holder = hold(var / "warehouse.duckdb", 15)  # opened before the run needs the warehouse, closed while it waits
    try:
        second = subprocess.run([*command, "--period", "2025-Q2"], env=env, capture_output=True, text=True,
                                timeout=600)
    finally:
        holder.kill()
    assert second.returncode == 0, second.stderr[-2000:]
    assert "is held by" in second.stderr and "Traceback" not in second.stderr
    assert "published: " in second.stdout


def test_the_history_validation_reads_waits_for_the_file_instead_of_skipping_the_checks(tmp_path, monkeypatch):
    """Busy only while validating: the previous quarters are read after the wait, never taken as
    'no history' (which would publish a unit ok that its history flags)."""
    from datetime import date

    from warehouse.db import migrate
    from warehouse.history import earlier_figures

    monkeypatch.setenv("TTHC_WAREHOUSE_WAIT_SECONDS", "30")
    path = tmp_path / "warehouse.duckdb"
    url = f"duckdb:///{path}"
    with engine_for(url) as engine:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO core.fact_bieu06 (unit_code, period_start, period_end, field_code, received_total, "
                "basis, source_id, run_id) VALUES ('01279', DATE '2024-01-01', DATE '2024-03-31', 'HT', 7, "
                "'self_reported', 'commune_spreadsheets', 'r1')"))
    holder = hold(path, 2)
    try:
        frame = earlier_figures(url, date(2024, 4, 1), date(2023, 1, 1))
    finally:
        holder.kill()
    assert frame[["unit_code", "received_total"]].values.tolist() == [["01279", 7]]
