"""Period loads and vintaged publishing, on DuckDB and on the PostgreSQL server."""
import json
import uuid
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.support.databases import throwaway_database
from tthc.findings import Finding, findings_table
from tthc.model import BIEU06_SCHEMA, DOSSIER_SCHEMA
from tthc.form import FACT_FIGURES, FIGURES
from tthc.periods import quarter
from warehouse.db import WarehouseLoadError, current_revision, engine_for, head_revision, migrate
from warehouse.load import load_period
from runner.publication import publish_period

PERIOD = quarter("2024-Q2", "calendar_quarter")


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database on 127.0.0.1, dropped afterwards."""
    with throwaway_database("postgresql") as url:
        yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'w.duckdb'}"
    return request.getfixturevalue("postgres_url")


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
    tables = {
        "core.fact_dossier": DOSSIER_SCHEMA.empty_table().append_column("landed_file", pa.array([], pa.string())),
        "core.fact_bieu06": pa.Table.from_pylist(rows, schema=BIEU06_SCHEMA),
        "core.unit_period_status": status,
        "core.bieu06_reconciled": reconciled.drop(columns=["unit_name", "unit_level"]),
        "quality.findings": findings_table([finding]),
        "quality.quarantine": status[status.quality_status == "critical"][["unit_code", "source_id", "reason"]],
    }
    return dict(units=units, tables=tables)


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
        assert current_revision(engine) == head_revision()
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
    folders = sorted(p.relative_to(tmp_path / "publish").as_posix() for p in (tmp_path / "publish").glob("*/*"))
    assert folders == ["2024-Q2/v1", "2024-Q2/v2"]
    for folder in folders:
        names = {p.name for p in (tmp_path / "publish" / folder).iterdir()}
        assert {"bieu06_by_unit.parquet", "bieu06_by_unit.csv", "datapackage.json"} <= names


def test_a_failed_load_leaves_the_previous_state(warehouse_url):
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **inputs())
        before = table_counts(engine)
        broken = inputs(received=99)
        findings = broken["tables"]["quality.findings"]
        broken["tables"]["quality.findings"] = findings.set_column(1, "severity", pa.array([None], pa.string()))
        with pytest.raises(WarehouseLoadError, match="quality.findings: rows of run run-2 refused"):
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


def test_revisions_say_what_changed_and_why(warehouse_url, tmp_path):
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **inputs())
        publish_period(engine, PERIOD, "run-1", tmp_path, sources={"commune_spreadsheets": "aaa"})
        load_period(engine, PERIOD, "run-2", **inputs(received=11))
        second = publish_period(engine, PERIOD, "run-2", tmp_path, sources={"commune_spreadsheets": "bbb"},
                                note="late correction from Phường A")
        assert second["reason"] == "late correction from Phường A (figures changed: commune_spreadsheets)"
        with engine.connect() as conn:
            revisions = conn.execute(sa.text(
                "SELECT unit_code, figure, from_vintage, to_vintage, old_value, new_value, change, reason "
                "FROM publish.bieu06_revisions_v1 ORDER BY figure")).all()
            reasons = conn.execute(sa.text("SELECT vintage, reason FROM publish.vintages ORDER BY vintage")).all()
    assert [tuple(r[:7]) for r in revisions] == [
        ("01279", "pending_total", 1, 2, 20, 22, "revised"),
        ("01279", "pending_within_due", 1, 2, 20, 22, "revised"),
        ("01279", "received_online", 1, 2, 20, 22, "revised"),
        ("01279", "received_total", 1, 2, 20, 22, "revised"),
    ]
    assert reasons[0].reason == "first publication of the period"
    assert revisions[0].reason == second["reason"]


def test_revisions_v2_show_quality_flags_and_the_provinces_totals_with_a_true_reason(warehouse_url, tmp_path):
    def with_rollup(data, received):
        rollup = {"parent_code": "04", "parent_level": "province", "field_code": "HT",
                  **{f: 0 for f in FACT_FIGURES}, "received_total": received, "units_included": 1,
                  "units_not_published": 1, "duplicates_removed": 0}
        data["tables"]["core.bieu06_rollup"] = pd.DataFrame([rollup])
        return data

    flagged = with_rollup(inputs(), 10)
    flagged["tables"]["core.unit_period_status"].loc[0, "quality_status"] = "warning"
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **with_rollup(inputs(), 10))
        publish_period(engine, PERIOD, "run-1", tmp_path)
        load_period(engine, PERIOD, "run-2", **flagged)  # same figures, a warning now
        second = publish_period(engine, PERIOD, "run-2", tmp_path)
        load_period(engine, PERIOD, "run-3", **with_rollup(inputs(received=11), 11))
        third = publish_period(engine, PERIOD, "run-3", tmp_path)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT level, unit_code, item, from_vintage, to_vintage, old_value, new_value, old_status, "
                "new_status, change, period_label FROM publish.bieu06_revisions "
                "ORDER BY to_vintage, level DESC, item")).all()
    assert second["reason"] == "quality flags changed, figures the same: commune_spreadsheets"
    assert third["reason"] == "figures changed: commune_spreadsheets"
    assert [tuple(r[:10]) for r in rows] == [
        ("unit", "01279", "quality_status", 1, 2, None, None, "ok", "warning", "revised"),
        ("unit", "01279", "pending_total", 2, 3, 20, 22, None, None, "revised"),
        ("unit", "01279", "pending_within_due", 2, 3, 20, 22, None, None, "revised"),
        ("unit", "01279", "quality_status", 2, 3, None, None, "warning", "ok", "revised"),
        ("unit", "01279", "received_online", 2, 3, 20, 22, None, None, "revised"),
        ("unit", "01279", "received_total", 2, 3, 20, 22, None, None, "revised"),
        ("province", "04", "received_total", 2, 3, 10, 11, None, None, "revised"),
    ]
    assert {r.period_label for r in rows} == {"2024-Q2"}
    assert read_a_few(warehouse_url, "SELECT level, unit_code, item, to_vintage FROM publish.bieu06_revisions LIMIT 3") \
        == sorted(tuple(r[:3]) + (r[4],) for r in rows)[:3]  # in the view's order: level, unit, item, vintage


def read_a_few(url: str, sql: str) -> list[tuple]:
    """What an analyst types first, in a process of its own with every core: on DuckDB 2.0 with more than
    one thread, `SELECT * FROM publish.bieu06_revisions_v2 LIMIT n` over the unordered view never
    returned (migration 0011 orders it); a timeout here fails the test instead of hanging the suite."""
    import subprocess
    import sys

    program = ("import json, sys, sqlalchemy as sa\n"
               "engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)\n"
               "with engine.connect() as conn:\n"
               "    print(json.dumps([list(r) for r in conn.execute(sa.text(sys.argv[2])).all()]))\n")
    done = subprocess.run([sys.executable, "-c", program, url, sql], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [tuple(r) for r in json.loads(done.stdout)]


def test_old_units_are_shown_on_new_units_only_where_the_merge_was_whole(warehouse_url, tmp_path):
    from tthc.config import load_settings
    from tthc.units import conversion_table

    table, _ = conversion_table(load_settings())
    # 09001 took both our communes whole; 09002 took one whole and part of another, so no figure
    conversion = pd.DataFrame([
        {"new_code": "09001", "old_code": "01279", "merge_type": "whole"},
        {"new_code": "09001", "old_code": "01280", "merge_type": "whole"},
        {"new_code": "09002", "old_code": "01281", "merge_type": "whole"},
        {"new_code": "09002", "old_code": "01282", "merge_type": "part"},
    ]).assign(effective_from=date(2025, 7, 1))
    assert {"whole", "part", "part_area"} <= set(table["merge_type"])
    data = inputs()
    data["tables"]["core.unit_period_status"]["quality_status"] = "ok"
    data["tables"]["core.bieu06_reconciled"]["quality_status"] = "ok"
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", conversion=conversion, **data)
        publish_period(engine, PERIOD, "run-1", tmp_path)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT unit_code, conversion_status, old_units, old_units_published, received_total "
                "FROM publish.bieu06_old_units_on_new_v1 ORDER BY unit_code")).all()
            splits = conn.execute(sa.text("SELECT count(*) FROM core.unit_conversion_splits")).scalar()
    assert [tuple(r) for r in rows] == [("09001", "whole", 2, 2, 40)]
    assert splits == 0


KILL_CHILD = """
import sys, time
import warehouse.load as load
from tests.test_warehouse import PERIOD, inputs
from warehouse.db import engine_for, migrate

phase = sys.argv[2]
original_insert, original_columns = load.bulk_insert, load._columns

def pause(*args):
    print("PAUSED", flush=True)
    time.sleep(120)

if phase == "staging":
    def bulk_insert(conn, table, data):
        n = original_insert(conn, table, data)
        pause()
        return n
    load.bulk_insert = bulk_insert
else:
    calls = []
    def columns(conn, table):
        calls.append(table)
        if len(calls) == 3:  # two tables already swapped inside the transaction
            pause()
        return original_columns(conn, table)
    load._columns = columns

with engine_for(sys.argv[1]) as engine:
    load.load_period(engine, PERIOD, "run-killed", **inputs(received=50))
"""


@pytest.mark.parametrize("phase", ["staging", "swap"])
def test_a_load_killed_with_sigkill_leaves_the_previous_state(warehouse_url, phase):
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    def state(engine):
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*), sum(received_total) FROM {t}")).one()._tuple()
                    for t in ("core.fact_bieu06", "core.bieu06_reconciled")} | table_counts(engine)

    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **inputs())
        before = state(engine)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, warehouse_url, phase], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "PAUSED", child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    with engine_for(warehouse_url) as engine:
        assert state(engine) == before
        load_period(engine, PERIOD, "run-2", **inputs())  # the rerun after the crash
        assert state(engine) == before
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM staging.fact_bieu06")).scalar()
        assert left == 0


def test_the_analyst_role_reads_publish_and_quality_only(postgres_url, tmp_path):
    """Roles are a PostgreSQL feature: a DuckDB warehouse is a single-user file."""
    from warehouse.roles import setup_roles

    warehouse_url = postgres_url
    suffix = uuid.uuid4().hex[:8]
    loader, analyst, person = f"loader_{suffix}", f"analyst_{suffix}", f"ana_{suffix}"
    admin = sa.create_engine(warehouse_url, isolation_level="AUTOCOMMIT")
    try:
        with engine_for(warehouse_url) as engine:
            migrate(engine)
            load_period(engine, PERIOD, "run-1", **inputs())
            publish_period(engine, PERIOD, "run-1", tmp_path)
            setup_roles(engine, loader, analyst)
            setup_roles(engine, loader, analyst)  # idempotent
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{person}" LOGIN IN ROLE "{analyst}"')
        as_analyst = sa.create_engine(warehouse_url.replace("postgres@", f"{person}@"))
        with as_analyst.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM publish.bieu06_by_unit")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM quality.findings")).scalar() == 1
        refused = [
            # staging and core are not the analyst's to read
            "SELECT count(*) FROM staging.fact_bieu06", "SELECT count(*) FROM core.fact_bieu06",
            "SELECT count(*) FROM core.fact_dossier", "SELECT count(*) FROM core.published_bieu06_by_unit",
            # publish and quality are read-only: no write, no DDL, no truncate, no new objects
            *[statement for table in ("publish.vintages", "quality.findings", "quality.quarantine") for statement in (
                f"INSERT INTO {table} SELECT * FROM {table}", f"UPDATE {table} SET run_id = run_id",
                f"DELETE FROM {table}", f"TRUNCATE {table}", f"ALTER TABLE {table} ADD COLUMN x integer",
                f"DROP TABLE {table}")],
            "UPDATE publish.bieu06_by_unit SET received_total = 0",  # an auto-updatable view
            "DELETE FROM publish.bieu06_by_unit_v1",
            "CREATE TABLE publish.mine (x integer)", "CREATE TABLE quality.mine (x integer)",
            "CREATE VIEW publish.mine AS SELECT 1 AS x", "CREATE TABLE core.mine (x integer)",
        ]
        for statement in refused:
            with as_analyst.connect() as conn:
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied|must be owner"):
                    conn.execute(sa.text(statement))
        as_analyst.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{person}"')
            for role in (loader, analyst):
                conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def test_a_rerun_replaces_the_periods_dossiers(warehouse_url):
    from tthc.model import DOSSIER_SCHEMA

    def dossier_rows(ids):
        rows = [{name: None for name in DOSSIER_SCHEMA.names} | {"source_id": "portal_dvc", "dossier_id": i,
                                                                 "unit_code": "01279", "status": 4} for i in ids]
        table = pa.Table.from_pylist(rows, schema=DOSSIER_SCHEMA)
        return table.append_column("landed_file", pa.array(["landing/x"] * len(ids), pa.string()))

    other = quarter("2024-Q3", "calendar_quarter")
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        data = inputs()
        data["tables"]["core.fact_dossier"] = dossier_rows(["A", "B", "C"])
        load_period(engine, PERIOD, "run-1", **data)
        load_period(engine, other, "run-1", **data)
        data["tables"]["core.fact_dossier"] = dossier_rows(["A", "D"])
        load_period(engine, PERIOD, "run-2", **data)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT period_start, string_agg(dossier_id, ',' ORDER BY dossier_id), min(run_id) "
                "FROM core.fact_dossier GROUP BY period_start ORDER BY period_start")).all()
    assert [tuple(r) for r in rows] == [(PERIOD.start, "A,D", "run-2"), (other.start, "A,B,C", "run-1")]


def test_files_follow_the_warehouse_a_new_warehouse_rewrites_them_and_a_failed_write_commits_nothing(tmp_path):
    """The vintage folder holds what the warehouse stands behind: a recreated warehouse that
    publishes other figures as vintage 1 rewrites v1 (the old files kept aside), and a publication
    whose files cannot be written commits no vintage."""
    root = tmp_path / "publish"
    first_url, second_url = f"duckdb:///{tmp_path / 'a.duckdb'}", f"duckdb:///{tmp_path / 'b.duckdb'}"
    with engine_for(first_url) as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", **inputs(received=10))
        first = publish_period(engine, PERIOD, "run-1", root)
    folder = root / PERIOD.label / "v1"
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["tthc:content_sha256"] == first["content_sha256"]

    with engine_for(second_url) as engine:  # a new warehouse, the same var/publish
        migrate(engine)
        load_period(engine, PERIOD, "run-2", **inputs(received=12))
        second = publish_period(engine, PERIOD, "run-2", root)
    assert second["vintage"] == 1 and second["content_sha256"] != first["content_sha256"]
    rewritten = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert rewritten["tthc:content_sha256"] == second["content_sha256"]
    assert pd.read_parquet(folder / "bieu06_by_unit.parquet")["received_total"].tolist() == [24]
    assert len(list((root / PERIOD.label).glob(".replaced-v1-*"))) == 1

    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder", encoding="utf-8")  # var/publish is a file
    with engine_for(f"duckdb:///{tmp_path / 'c.duckdb'}") as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-3", **inputs(received=10))
        with pytest.raises(OSError):
            publish_period(engine, PERIOD, "run-3", blocked)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM publish.vintages")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM core.published_bieu06_by_unit")).scalar() == 0


def test_every_column_analysts_read_has_its_comment_from_the_dictionary(warehouse_url):
    """docs/data-dictionary.md and the warehouse say the same: every table, view and column of
    `publish` and `quality` is described, with the form's label where the form has one."""
    from tthc import dictionary
    from warehouse.comments import apply_dictionary, columns, relations

    with engine_for(warehouse_url) as engine:
        migrate(engine)
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                described = {(s, t, c): d for s, t, c, d in conn.execute(sa.text("""
                    SELECT n.nspname, c.relname, a.attname, col_description(c.oid, a.attnum)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    WHERE n.nspname IN ('publish', 'quality')""")).all()}
            else:
                described = {(s, t, c): d for s, t, c, d in conn.execute(sa.text(
                    "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
                    "WHERE schema_name IN ('publish', 'quality')")).all()}
            every = [(s, t, c) for s, t, _ in relations(conn) for c in columns(conn, s, t)]
            labels = dict(conn.execute(sa.text(
                "SELECT code, code_label FROM publish.code_labels WHERE kind = 'figure'")).all())
        with engine.begin() as conn:  # applied once per dictionary and revision
            assert apply_dictionary(conn, "head-of-test") is True
            assert apply_dictionary(conn, "head-of-test") is False
    assert len(every) > 200
    missing = [f"{s}.{t}.{c}" for s, t, c in every if not described.get((s, t, c))]
    assert missing == []
    assert described[("publish", "bieu06_by_unit", "resolved_late")].startswith("Giải quyết quá hạn (10)")
    assert labels["pending_paused"] == "Đang chờ bổ sung, tạm dừng (15)"
    assert dictionary.relation_comment("publish.bieu06_by_unit")


def test_old_units_on_new_are_keyed_by_the_new_unit_across_the_reform(warehouse_url, tmp_path):
    """A reused code never splices two units: 01648 was Thị trấn Hòa Thuận until 2025-06-30 and is Xã
    Phục Hòa after; before the reform the row sums Phục Hòa's old units, after it is Phục Hòa's own."""
    before, after = PERIOD, quarter("2025-Q3", "calendar_quarter")
    units = pd.DataFrame([
        {"unit_code": c, "unit_name": n, "level": "commune", "parent_code": "049", "province_code": "04",
         "valid_from": date(1900, 1, 1), "valid_to": date(2025, 6, 30)}
        for c, n in (("01648", "Thị trấn Hòa Thuận"), ("01651", "Xã Mỹ Hưng"), ("01615", "Xã Hồng Quang"))
    ] + [{"unit_code": "01648", "unit_name": "Xã Phục Hòa", "level": "commune", "parent_code": "04",
          "province_code": "04", "valid_from": date(2025, 7, 1), "valid_to": date(9999, 12, 31)}])
    conversion = pd.DataFrame([
        {"new_code": "01648", "new_name": "Xã Phục Hòa", "old_code": "01648", "old_name": "Thị trấn Hòa Thuận",
         "merge_type": "whole"},
        {"new_code": "01648", "new_name": "Xã Phục Hòa", "old_code": "01651", "old_name": "Xã Mỹ Hưng",
         "merge_type": "whole"},
        {"new_code": "01636", "new_name": "Xã Bế Văn Đàn", "old_code": "01615", "old_name": "Xã Hồng Quang",
         "merge_type": "whole"},
    ]).assign(effective_from=date(2025, 7, 1))

    def tables(period, rows):
        figures = {f: 0 for f in FIGURES}
        frame = pd.DataFrame([{"unit_code": u, "period_start": period.start, "period_end": period.end,
                               "field_code": "HT", **figures, "carried_over": c, "received_total": c + 1,
                               "received_online": 1, "pending_total": p, "pending_within_due": p,
                               "resolved_total": c + 1 - p, "resolved_on_time": c + 1 - p,
                               "basis": "records", "source_id": "portal_dvc"} for u, c, p in rows])
        status = pd.DataFrame([{"unit_code": u, "unit_name": "x", "unit_level": "commune", "source_id": "portal_dvc",
                                "basis": "records", "coverage_complete": True, "quality_status": "ok", "reason": None}
                               for u, _, _ in rows])
        return {"core.bieu06_reconciled": frame.assign(quality_status="ok"), "core.unit_period_status": status}

    with engine_for(warehouse_url) as engine:
        migrate(engine)
        load_period(engine, before, "q2", units=units, conversion=conversion, fields=None,
                    tables=tables(before, [("01648", 1, 3), ("01651", 0, 2), ("01615", 0, 1)]))
        publish_period(engine, before, "q2", tmp_path)
        load_period(engine, after, "q3", units=units, conversion=conversion, fields=None,
                    tables=tables(after, [("01648", 5, 0)]))
        publish_period(engine, after, "q3", tmp_path)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT unit_code, unit_name, period_start, figures_of, conversion_status, old_codes, carried_over, "
                "pending_total FROM publish.bieu06_old_units_on_new_v1 ORDER BY unit_code, period_start")).all()
            splits = conn.execute(sa.text("SELECT count(*) FROM core.unit_conversion_splits")).scalar()
    assert [tuple(r) for r in rows] == [
        ("01636", "Xã Bế Văn Đàn", before.start, "old_units", "whole", "01615", 0, 1),
        ("01648", "Xã Phục Hòa", before.start, "old_units", "whole", "01648,01651", 1, 5),
        ("01648", "Xã Phục Hòa", after.start, "unit", "own_figures", "01648,01651", 5, 0),
    ]
    assert splits == 0


def test_a_code_the_conversion_puts_into_two_new_units_is_a_split_in_one_place(tmp_path):
    conversion = pd.DataFrame([
        {"new_code": "01636", "old_code": "01615", "old_name": "Xã Hồng Quang", "merge_type": "whole"},
        {"new_code": "01648", "old_code": "01615", "old_name": "Xã Mỹ Hưng", "merge_type": "whole"},
    ]).assign(effective_from=date(2025, 7, 1))
    data = inputs()
    with engine_for(f"duckdb:///{tmp_path / 'w.duckdb'}") as engine:
        migrate(engine)
        load_period(engine, PERIOD, "run-1", conversion=conversion, **data)
        with engine.connect() as conn:
            splits = conn.execute(sa.text(
                "SELECT old_code, new_units, new_codes, old_names, names_differ FROM core.unit_conversion_splits")).all()
    assert [tuple(r) for r in splits] == [("01615", 2, "01636,01648", "Xã Hồng Quang | Xã Mỹ Hưng", True)]
