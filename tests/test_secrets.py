"""The warehouse password never reaches an output: given in the URL it is redacted in the run
summary, its JSON and the logs; a deployment gives it apart (TTHC_WAREHOUSE_PASSWORD)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.test_warehouse import postgres_url  # noqa: F401 - the fixture
from warehouse.db import with_password

SECRET = "Pw-7f3a9c-not-for-logs"


def test_the_password_is_taken_from_the_environment_only_when_the_url_has_none(monkeypatch):
    monkeypatch.setenv("TTHC_WAREHOUSE_PASSWORD", SECRET)
    composed = with_password("postgresql+psycopg://tthc_etl@db:5432/tthc")
    assert isinstance(composed, sa.URL) and composed.password == SECRET
    assert SECRET not in str(composed)  # SQLAlchemy renders it masked
    assert with_password("postgresql+psycopg://u:given@db/tthc") == "postgresql+psycopg://u:given@db/tthc"
    assert with_password("duckdb:///var/warehouse.duckdb") == "duckdb:///var/warehouse.duckdb"


def test_a_run_with_a_password_in_the_url_prints_and_logs_it_nowhere(postgres_url, small_sample, tmp_path):  # noqa: F811
    var = tmp_path / "var"
    shutil.copytree(small_sample, var / "sample")
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")  # trust auth: any password is accepted
    env = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false"}
    env.pop("TTHC_WAREHOUSE_URL", None)
    sample = json.loads((small_sample / "sample.json").read_text(encoding="utf-8"))
    tthc = Path(sys.executable).parent / "tthc"
    result = subprocess.run([str(tthc), "run", "--period", "2025-Q2", "--sample", "--json", "--warehouse", url,
                             "--seed", str(sample["seed"]), "--scale", str(sample["scale"])],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "postgres:***@" in result.stdout
    for path in var.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".log", ".csv"):
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
