"""Period loads and vintaged publishing, on DuckDB and on the PostgreSQL server."""
import uuid
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.conftest import require_service
from tthc.findings import Finding, findings_table
from tthc.model import BIEU06_SCHEMA, DOSSIER_SCHEMA, FIGURES
from tthc.periods import quarter
from warehouse.db import WarehouseLoadError, current_revision, engine_for, migrate
from warehouse.load import load_period
from warehouse.publish import publish_period

PERIOD = quarter("2024-Q2", "calendar_quarter")


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path):
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'w.duckdb'}"
        return
    require_service("PostgreSQL", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    name = f"tthc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def inputs(received=10):
    units = pd.DataFrame([
        {"unit_code": "01279", "unit_name": "Phường A", "level": "commune", "parent_code": "040",
         "province_code": "04", "valid_from": date(1900, 1, 1), "valid_to": date(2025, 6, 30)},
        {"unit_code": "01280", "unit_name": "Xã B", "level": "commune", "parent_code": "040",
         "province_code": "04", "valid_from": date(1900, 1, 1), "valid_to": date(2025, 6, 30)},
    ])
    figures = {f: 0 for f in FIGURES}
    figures.update(received_total=received, received_online=received, pending_total=received,
                   pending_within_due=received)
    rows = [{"unit_code": u, "period_start": PERIOD.start, "period_end": PERIOD.end, "field_code": f, **figures,
             "basis": "self_reported", "source_id": "commune_spreadsheets", "landed_file": "x.xlsx"}
            for u in ("01279", "01280") for f in ("HT", "CT")]
    reconciled = pd.DataFrame(rows).drop(columns=["landed_file"])
    reconciled["quality_status"] = ["ok", "ok", "critical", "critical"]
    reconciled["unit_name"], reconciled["unit_level"] = "x", "commune"
    status = pd.DataFrame([
        {"unit_code": "01279", "unit_name": "Phường A", "unit_level": "commune", "source_id": "commune_spreadsheets",
         "basis": "self_reported", "coverage_complete": True, "quality_status": "ok", "reason": None},
        {"unit_code": "01280", "unit_name": "Xã B", "unit_level": "commune", "source_id": "commune_spreadsheets",
         "basis": "self_reported", "coverage_complete": True, "quality_status": "critical", "reason": "identity"},
    ])
    finding = Finding("identity.received", "critical", "sai", PERIOD.start, PERIOD.end, unit_code="01280")
    return dict(units=units, dossiers=DOSSIER_SCHEMA.empty_table().append_column("landed_file", pa.array([], pa.string())),
                bieu06_rows=pa.Table.from_pylist(rows, schema=BIEU06_SCHEMA), unit_status=status,
                reconciled=reconciled, findings=findings_table([finding]),
                quarantine=status[status.quality_status == "critical"][["unit_code", "source_id", "reason"]])


def published(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT unit_code, vintage, received_total, quality_status FROM publish.bieu06_by_unit ORDER BY unit_code"
        )).all()


def table_counts(engine):
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("core.fact_bieu06", "core.bieu06_reconciled", "quality.findings", "quality.quarantine",
                          "core.dim_unit")}


def test_load_and_publish_are_idempotent_and_versioned(warehouse_url, tmp_path):
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        assert current_revision(engine) == "0001"
        load_period(engine, PERIOD, "run-1", **inputs())
        first = publish_period(engine, PERIOD, "run-1", tmp_path / "publish")
        counts = table_counts(engine)
        assert counts == {"core.fact_bieu06": 4, "core.bieu06_reconciled": 4, "quality.findings": 1,
                          "quality.quarantine": 1, "core.dim_unit": 2}
        # the critical unit is withheld; the other is published summed over its fields
        assert published(engine) == [("01279", 1, 20, "ok")]

        migrate(engine)
        load_period(engine, PERIOD, "run-2", **inputs())
        again = publish_period(engine, PERIOD, "run-2", tmp_path / "publish")
        assert table_counts(engine) == counts
        assert (again["vintage"], again["new_vintage"]) == (1, False)
        assert again["content_sha256"] == first["content_sha256"]

        load_period(engine, PERIOD, "run-3", **inputs(received=11))
        third = publish_period(engine, PERIOD, "run-3", tmp_path / "publish")
        assert (third["vintage"], third["new_vintage"]) == (2, True)
        assert published(engine) == [("01279", 2, 22, "ok")]
        with engine.connect() as conn:
            history = conn.execute(sa.text(
                "SELECT vintage, received_total FROM publish.bieu06_by_unit_history_v1 ORDER BY vintage")).all()
        assert history == [(1, 20), (2, 22)]
    files = sorted(p.relative_to(tmp_path / "publish").as_posix() for p in (tmp_path / "publish").rglob("*.*"))
    assert files == ["2024-Q2/v1/bieu06_by_unit.csv", "2024-Q2/v1/bieu06_by_unit.parquet",
                     "2024-Q2/v2/bieu06_by_unit.csv", "2024-Q2/v2/bieu06_by_unit.parquet"]


def test_a_failed_load_leaves_the_previous_state(warehouse_url):
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **inputs())
        before = table_counts(engine)
        broken = inputs(received=99)
        broken["findings"] = broken["findings"].set_column(1, "severity", pa.array([None], pa.string()))
        with pytest.raises(WarehouseLoadError, match="quality.findings"):
            load_period(engine, PERIOD, "run-2", **broken)
        assert table_counts(engine) == before
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT max(received_total) FROM core.fact_bieu06")).scalar() == 10


def test_the_published_view_matches_its_contract(warehouse_url):
    import yaml

    from tests.conftest import REPO

    contract = yaml.safe_load((REPO / "warehouse/contracts/publish.bieu06_by_unit.yaml").read_text(encoding="utf-8"))
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        with engine.connect() as conn:
            columns = list(conn.execute(sa.text("SELECT * FROM publish.bieu06_by_unit")).keys())
    assert columns == [c["name"] for c in contract["columns"]]
