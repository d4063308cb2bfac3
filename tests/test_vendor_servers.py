"""The sample's vendor databases on the servers production uses: Tân Dân's tables copied to
PostgreSQL (schemas "Business" and "Catalog"), OpenCPS's to MariaDB, read through the shipped
presets and the sample's registry entries, and the derived figures equal the simulator's own
count (ground_truth/vendor_bieu06.csv) unit by unit, field by field."""
from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from extractors.registry import extract_source, landed_source
from runner.local_sources import environment
from tests.support.databases import throwaway_database
from transforms.canonicalize import canonical_dossiers
from transforms.derive import derive_figures
from tthc.config import load_settings
from tthc.form import FIGURES
from tthc.landing import Manifest

PERIODS = ("2025-Q2", "2025-Q3")
KEY = ["unit_code", "field_code"]
# the vendors' datetime columns, stored as text in the SQLite copies
DATES = {"NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi", "NgayYeuCauBoSung",
         "CreatedOn", "LastModifiedOn", "DeletedOn", "submitDate", "receiveDate", "dueDate", "extendDate",
         "releaseDate", "finishDate", "cancellingDate", "createDate", "modifiedDate"}


def sqlite_table(path, table: str) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        frame = pd.read_sql_query(f'SELECT * FROM "{table}"', con)
    for column in DATES & set(frame.columns):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def derived_by_unit(source_id: str, var, tmp_path) -> dict[str, pd.DataFrame]:
    settings = load_settings()
    source = settings.source(source_id)
    out = {}
    for label in PERIODS:
        period = settings.period(label)
        manifest = Manifest.read(extract_source(source, period, var, "servers", settings))
        dossiers, derived = tmp_path / f"{label}_dossiers.parquet", tmp_path / f"{label}_derived.parquet"
        canonical_dossiers([landed_source(source, period, var, manifest)], period, dossiers,
                           reshape=_as_the_pipeline_before_the_reform(settings, period))
        derive_figures(dossiers, period, derived)
        frame = pq.read_table(derived).to_pandas().set_index(KEY)[list(FIGURES)].astype("int64")
        out[label] = frame[frame.sum(axis=1) > 0].sort_index()
    return out


def _as_the_pipeline_before_the_reform(settings, period):
    """Before the reform the pipeline leaves out the dossiers a department took over on it (runner.pipeline.across_reform)."""
    from datetime import datetime

    from transforms.canonicalize import HandedOverLater

    reform = datetime(2025, 7, 1)
    if period.end >= reform.date():
        return None
    return HandedOverLater(reform, {(dept, field) for field, dept in settings.district_fields_to_departments.items()})


def expected_by_unit(sample, source_id: str) -> dict[str, pd.DataFrame]:
    truth = pd.read_csv(sample / "ground_truth" / "vendor_bieu06.csv", dtype={"unit_code": str})
    truth = truth[truth["source_id"] == source_id]
    return {label: truth[truth["period"] == label].set_index(KEY)[list(FIGURES)].astype("int64").sort_index()
            for label in PERIODS}


def placed(sample, source_id: str, derived: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The derived rows without those under vendor ids the unit-id table does not know (the truth lists them apart)."""
    raw = pd.read_csv(sample / "ground_truth" / "vendor_unresolved_units.csv", dtype=str)
    ids = set(raw.loc[raw["source_id"] == source_id, "raw_unit_id"])
    return {label: frame[~frame.index.get_level_values("unit_code").isin(ids)] for label, frame in derived.items()}


@pytest.mark.services
def test_the_tandan_sample_on_postgresql_equals_the_simulators_count(small_sample, var, tmp_path):
    with throwaway_database("postgresql") as url:
        engine = sa.create_engine(url)
        path = small_sample / "tandan" / "tandan.sqlite"
        with engine.begin() as conn:
            conn.exec_driver_sql('CREATE SCHEMA "Business"')
            conn.exec_driver_sql('CREATE SCHEMA "Catalog"')
            sqlite_table(path, "HoSos").to_sql("HoSos", conn, schema="Business", index=False)
            sqlite_table(path, "Groups").to_sql("Groups", conn, schema="Catalog", index=False)
        engine.dispose()
        connection = json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres",
                                 "schema": sa.make_url(url).database})
        with environment(AIRFLOW_CONN_TTHC_TANDAN_DEPARTMENTS=connection):
            derived = derived_by_unit("tandan_departments", var, tmp_path)
    expected = expected_by_unit(small_sample, "tandan_departments")
    for label, frame in placed(small_sample, "tandan_departments", derived).items():
        assert len(expected[label]) > 0
        pd.testing.assert_frame_equal(frame, expected[label], check_names=False)


@pytest.mark.services
def test_the_opencps_sample_on_mariadb_equals_the_simulators_count(small_sample, var, tmp_path):
    with throwaway_database("mariadb") as url:
        engine = sa.create_engine(url)
        path = small_sample / "opencps" / "opencps.sqlite"
        with engine.begin() as conn:
            for table in ("opencps_dossier", "opencps_serviceinfo"):
                sqlite_table(path, table).to_sql(table, conn, index=False)
        engine.dispose()
        connection = json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root",
                                 "schema": sa.make_url(url).database})
        with environment(AIRFLOW_CONN_TTHC_OPENCPS_DEPARTMENTS=connection):
            derived = derived_by_unit("opencps_departments", var, tmp_path)
    expected = expected_by_unit(small_sample, "opencps_departments")
    for label, frame in derived.items():
        assert len(expected[label]) > 0
        pd.testing.assert_frame_equal(frame, expected[label], check_names=False)
