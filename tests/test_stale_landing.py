"""A source that fails on a rerun keeps its units on its last good landing, marked stale, or (with
`reliability.on_source_failure: refuse`) the run publishes no new vintage; a vintage's reason
names only the sources whose published unit figures changed (docs/extractors.md, "A source that
fails on a rerun")."""
from __future__ import annotations

import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from runner.local_sources import environment as env
from tthc.form import FACT_FIGURES
from tests.test_faults import PERIOD, closed_port, duckdb_url, new_var, run_in_process

UNITS = "SELECT unit_code, quality_status, source_id, received_total, resolved_total, pending_total " \
        "FROM publish.bieu06_by_unit ORDER BY unit_code"


def _settings(refuse: bool = False):
    from tthc.config import load_settings

    settings = load_settings()
    portal = settings.source("portal_dvc")
    portal.spec["retries"] = {"attempts": 2, "backoff_seconds": 0.05, "backoff_max_seconds": 0.1,
                              "jitter_seconds": 0, "budget_seconds": 5}
    portal.spec["timeout_seconds"] = 2
    if refuse:
        settings.province_doc["reliability"] = {"on_source_failure": "refuse"}
    return settings


def _rerun_with_the_portal_down(var, sample, settings, run_id):
    from runner import pipeline
    from runner.local_sources import sample_connections

    down = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": closed_port(), "password": "x"})
    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(sample):
        with env(AIRFLOW_CONN_TTHC_PORTAL_DVC=down):
            ctx = pipeline.make_context(PERIOD, run_id=run_id, warehouse_url=duckdb_url(var), settings=settings)
            try:
                return ctx, pipeline.run(ctx), None
            except pipeline.NothingPublished as exc:
                return ctx, None, exc


def _published(var):
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(UNITS).fetchall(), con.sql("SELECT vintage, units, reason FROM publish.vintages "
                                                  "ORDER BY vintage").fetchall()


@pytest.mark.xdist_group("faults_reference")
def test_a_source_failing_on_a_rerun_keeps_its_units_on_the_last_good_landing(small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    settings = _settings()
    first = run_in_process(var, small_sample, "good", settings=settings)
    assert first["published"]["vintage"] == 1
    units_before, vintages_before = _published(var)
    assert any(row[2] == "portal_dvc" for row in units_before)
    landing = var / "landing" / PERIOD / "portal_dvc"
    landed_at = json.loads((landing / "manifest.json").read_text())["extracted_at"]

    ctx, second, refused = _rerun_with_the_portal_down(var, small_sample, settings, "portal-down")
    assert refused is None
    assert (landing / "failed.json").exists()
    # the same figures for every unit: no new vintage
    assert second["published"]["vintage"] == 1 and not second["published"]["new_vintage"]
    assert _published(var) == (units_before, vintages_before)
    sources = ctx.landed()
    assert "portal_dvc" not in sources["missing"] and "portal_dvc" in sources["landed"]
    assert sources["stale"]["portal_dvc"]["landed_at"] == landed_at
    assert "ConnectionError" in sources["stale"]["portal_dvc"]["failure"]
    assert second["stale_sources"].keys() == {"portal_dvc"}
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        stale = con.sql("SELECT severity, source_id, message FROM quality.findings "
                        "WHERE check_id = 'extract.stale_landing'").fetchall()
        missing = con.sql("SELECT count(*) FROM quality.findings WHERE check_id = 'extract.source_missing'").fetchall()
    assert len(stale) == 1 and stale[0][:2] == ("warning", "portal_dvc")
    assert "ConnectionError" in stale[0][2] and landed_at in stale[0][2]
    assert missing == [(0,)]


@pytest.mark.xdist_group("faults_reference")
def test_refuse_publishes_no_new_vintage_while_a_source_failed(small_sample, tmp_path):
    from runner.pipeline import PublicationRefused

    var = new_var(tmp_path, small_sample)
    settings = _settings(refuse=True)
    assert run_in_process(var, small_sample, "good", settings=settings)["published"]["vintage"] == 1
    before = _published(var)
    _, second, refused = _rerun_with_the_portal_down(var, small_sample, settings, "portal-down")
    assert second is None and isinstance(refused, PublicationRefused)
    message = str(refused)
    assert "no new vintage" in message and "on_source_failure is refuse" in message and "portal_dvc failed" in message
    assert _published(var) == before
    assert sorted(p.name for p in (var / "publish" / PERIOD).iterdir()) == ["v1"]


def test_an_unknown_on_source_failure_is_a_configuration_error():
    from tthc.config import ConfigError, load_settings

    settings = load_settings()
    assert settings.on_source_failure == "last_good_landing"
    settings.province_doc["reliability"] = {"on_source_failure": "sometimes"}
    with pytest.raises(ConfigError, match="on_source_failure 'sometimes'"):
        assert settings.on_source_failure


def _units(*rows):
    frame = pd.DataFrame([{"unit_code": code, "unit_name": code, "unit_level": "commune",
                           "period_start": date(2024, 4, 1), "period_end": date(2024, 6, 30), "vintage": 1,
                           "quality_status": status, "source_id": source, "basis": "records",
                           **{f: received if f == "received_total" else 0 for f in FACT_FIGURES}}
                          for code, source, status, received in rows])
    for f in FACT_FIGURES:
        frame[f] = frame[f].astype("Int64")
    return frame


def test_a_vintage_reason_names_only_the_sources_whose_figures_changed():
    from warehouse.publish import vintage_reason

    before = _units(("a", "portal_dvc", "ok", 5), ("b", "agency_db", "ok", 7), ("c", "sheets", "ok", 1))
    assert vintage_reason(before, None, None) == "first publication of the period"
    # agency_db's unit changed; portal_dvc (re-landed, or kept on its last landing) did not
    after = _units(("a", "portal_dvc", "ok", 5), ("b", "agency_db", "ok", 8), ("c", "sheets", "ok", 1))
    assert vintage_reason(after, before, None) == "figures changed: agency_db"
    # a status change counts; the note is kept
    flagged = _units(("a", "portal_dvc", "ok", 5), ("b", "agency_db", "ok", 7), ("c", "sheets", "warning", 1))
    assert vintage_reason(flagged, before, "late form") == "late form (quality flags changed, figures the same: sheets)"
    # a withdrawn unit names its source; a unit that moved names both
    withdrawn = _units(("b", "agency_db", "ok", 7), ("c", "portal_dvc", "ok", 1))
    assert vintage_reason(withdrawn, before, None) == ("figures changed: portal_dvc, sheets; 1 units published "
                                                       "before are withheld now (quality.findings): a")
    assert vintage_reason(before.copy(), before, None).startswith("same unit figures per source")
