"""Each stage on bad input: a source that is down, a source that refuses, an unknown unit
code. The error names what and where; the run goes on; nothing already landed is lost."""
import json
import socket

import duckdb
import pandas as pd
import pytest

from extractors.base import SourceDataError, SourceUnavailable
from extractors.registry import extract_source, landed_sources
from runner import pipeline
from tthc.config import load_settings
from runner.local_sources import sample_connections
from tthc.form import FIGURES
from validations.bieu06_rows import validate_bieu06


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_api_that_is_down_fails_clearly_and_keeps_the_previous_landing(small_sample, var, monkeypatch):
    settings = load_settings()
    source, period = settings.source("portal_dvc"), settings.period("2024-Q2")
    with sample_connections(small_sample):
        manifest = extract_source(source, period, var, "run-1", settings)
    before = manifest.parent.joinpath("dossiers.parquet").read_bytes()
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": closed_port(), "password": "x"}))
    monkeypatch.setitem(source.spec, "timeout_seconds", 2)
    with pytest.raises(SourceUnavailable, match=r"portal_dvc: http://127\.0\.0\.1:\d+/api/v1/hoso page 1"):
        extract_source(source, period, var, "run-2", settings)
    assert manifest.parent.joinpath("dossiers.parquet").read_bytes() == before
    landed, missing = landed_sources(settings, period, var)
    stale = {s.source_id: s.stale for s in landed}  # kept on the previous landing, marked stale
    assert "portal_dvc" not in missing and "ConnectionError" in stale["portal_dvc"]["failure"]


def test_a_wrong_token_fails_at_once_with_the_body(small_sample, var, monkeypatch):
    settings = load_settings()
    with sample_connections(small_sample) as env:
        conn = json.loads(env["AIRFLOW_CONN_TTHC_PORTAL_DVC"])
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps({**conn, "password": "wrong"}))
        with pytest.raises(SourceUnavailable, match="HTTP 401"):
            extract_source(settings.source("portal_dvc"), settings.period("2024-Q2"), var, "r", settings)


def test_a_database_without_the_registry_columns_is_named(small_sample, var, monkeypatch, tmp_path):
    import sqlite3

    db = tmp_path / "other.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE hs_hoso (id INTEGER)").connection.commit()
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    settings = load_settings()
    with pytest.raises(SourceDataError, match=r"agency_db_xd_tnmt: database sqlite:.*other.sqlite: "
                                              r"table 'hs_hoso' does not have the registry's columns \['so_hs'"):
        extract_source(settings.source("agency_db_xd_tnmt"), settings.period("2024-Q2"), var, "r", settings)


def test_an_unknown_unit_code_is_a_critical_finding():
    settings = load_settings()
    period = settings.period("2025-Q3")
    row = {f: 1 for f in FIGURES} | {"received_total": 3, "resolved_total": 3, "pending_total": 2,
                                     "returned_withdrawn": -1}
    rows = pd.DataFrame([{**row, "unit_code": "01279", "field_code": "HT", "basis": "records", "source_id": "s",
                          "landed_file": None},
                         {**row, "unit_code": "040", "field_code": "HT", "basis": "records", "source_id": "s",
                          "landed_file": None}])
    for f in FIGURES:
        rows[f] = rows[f].astype("Int64")
    findings, _ = validate_bieu06(rows, period, ["01279"], ["HT"])
    unknown = [f for f in findings if f.check_id == "unit.known"]
    assert [(f.unit_code, f.severity) for f in unknown] == [("040", "critical")]  # districts ended on 30/6/2025
    assert {f.check_id for f in findings if f.unit_code == "01279"} == {"figures.non_negative", "identity.balance"}


def test_a_run_with_a_source_down_completes_and_reports_its_units_missing(small_sample, var, monkeypatch):
    with sample_connections(small_sample):
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT", json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": closed_port(), "login": "x"}))
        ctx = pipeline.make_context("2024-Q2", run_id="down-1")
        summary = pipeline.run(ctx)
    assert summary["published"]["units"] > 100
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        missing = con.sql("SELECT unit_code FROM core.unit_period_status WHERE quality_status = 'missing'").fetchall()
        published = {r[0] for r in con.sql("SELECT unit_code FROM publish.bieu06_by_unit").fetchall()}
        messages = [r[0] for r in con.sql("SELECT message FROM quality.findings WHERE check_id = "
                                          "'extract.source_missing'").fetchall()]
    assert sorted(m[0] for m in missing) == ["000.00.07.H04", "000.00.08.H04"]
    assert not published & {"000.00.07.H04", "000.00.08.H04"}
    assert len(messages) == 1 and "agency_db_xd_tnmt" in messages[0]
