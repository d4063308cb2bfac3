"""`tthc run` refuses what it cannot run with one clear line and exit status 2, never a
traceback: a period label that is not a quarter, a quarter that has not begun, reference data
that is not there."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TTHC = Path(sys.executable).parent / "tthc"


def run(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TTHC_VAR_DIR": str(tmp_path / "var"), "GX_ANALYTICS_ENABLED": "false", **env}
    environment.pop("TTHC_WAREHOUSE_URL", None)
    return subprocess.run([str(TTHC), "run", *args], env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("label, said", [
    ("2025-Q5", "expected a quarter label like 2024-Q3"),
    ("2025Q2", "expected a quarter label like 2024-Q3"),
    ("2099-Q1", "period 2099-Q1 (2099-01-01 – 2099-03-31) has not begun"),
])
def test_a_period_that_cannot_be_run_is_refused(tmp_path, label, said):
    result = run(tmp_path, "--period", label)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "var" / "publish").exists()


def test_missing_reference_data_is_named(tmp_path):
    result = run(tmp_path, "--period", "2025-Q2", TTHC_REFERENCE_DATA=str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert f"reference data error: {tmp_path / 'nowhere'}" in result.stderr and "Traceback" not in result.stderr
