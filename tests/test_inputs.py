"""Inputs that are missing, claimed twice or dated implausibly, and a run that runs out of time:
each is a finding an officer reads, never a silent 0, a silent loss or a silent partial figure
(README, "Reliability and security"). Whole runs (`runner.pipeline.run`) on the 2 % sample,
its portal served over HTTP on 127.0.0.1, its agency database in SQLite, into DuckDB."""
from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from runner.local_sources import environment as env
from tests.test_faults import PERIOD, duckdb_url, new_var, run_in_process

UNITS = "SELECT unit_code, quality_status, source_id, received_total, received_online, received_direct_postal, " \
        "carried_over, resolved_total, pending_total, returned_withdrawn FROM publish.bieu06_by_unit ORDER BY unit_code"
MOVED = "000.00.07.H04"  # a department of the agency database that the portal's covers also claims in one test
TWICE = "000.00.08.H04"  # … and that a second database source claims as well


def _run(var: Path, sample: Path, run_id: str, settings=None, **overrides: str | None) -> tuple[object, dict | None,
                                                                                               Exception | None]:
    """`pipeline.run` with the sample's sources, `overrides` set over the sample's connections."""
    from runner import pipeline
    from runner.local_sources import sample_connections

    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(sample), env(**overrides):
        ctx = pipeline.make_context(PERIOD, run_id=run_id, warehouse_url=duckdb_url(var), settings=settings)
        try:
            return ctx, pipeline.run(ctx), None
        except pipeline.NothingPublished as exc:
            return ctx, None, exc


def _query(var: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _published(var: Path) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in _query(var, UNITS)}


def _findings(var: Path, check_id: str) -> list[tuple]:
    return _query(var, "SELECT severity, source_id, unit_code, message FROM quality.findings WHERE check_id = ? "
                       "ORDER BY unit_code, source_id", check_id)


@pytest.fixture(scope="module")
def reference(small_sample, tmp_path_factory):
    """A run with every source as the sample serves it: the published figures per unit."""
    var = new_var(tmp_path_factory.mktemp("inputs-reference"), small_sample)
    assert run_in_process(var, small_sample, "reference")["published"]["vintage"] == 1
    return {"var": var, "published": _published(var),
            "levels": dict(_query(var, "SELECT unit_code, unit_level FROM core.unit_period_status"))}


# ---------------------------------------------------------------- 1. the period's workbook folder missing

def _share_without_the_period(sample: Path, root: Path) -> Path:
    """A spreadsheets share holding every quarter's folder but the run's."""
    share = root / "share"
    share.mkdir()
    for folder in (sample / "spreadsheets").iterdir():
        if folder.name != PERIOD:
            (share / folder.name).symlink_to(folder, target_is_directory=True)
    return share


@pytest.mark.xdist_group("inputs")
def test_a_missing_period_folder_fails_the_workbooks_and_no_commune_is_published_from_partial_records(
        reference, small_sample, tmp_path):
    share = _share_without_the_period(small_sample, tmp_path)
    var = new_var(tmp_path, small_sample)
    ctx, summary, refused = _run(var, small_sample, "no-inbox", TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(share))
    assert refused is None
    sources = ctx.landed()
    why = sources["missing"]["commune_spreadsheets"]
    assert "commune_spreadsheets" not in sources["landed"] and f"has no folder {PERIOD}" in why
    assert json.loads((var / "landing" / PERIOD / "commune_spreadsheets" / "failed.json").read_text())["status"] == "failed"
    missing = _findings(var, "extract.source_missing")
    assert [(m[0], m[1]) for m in missing] == [("warning", "commune_spreadsheets")]
    assert f"has no folder {PERIOD}" in missing[0][3] and "Nguồn commune_spreadsheets không lấy được số liệu" in missing[0][3]
    assert _findings(var, "extract.source_empty") == []

    communes = {u for u, level in reference["levels"].items() if level == "commune"}
    assert len(communes) == 161
    status = dict(_query(var, "SELECT unit_code, quality_status FROM core.unit_period_status"))
    published = _published(var)
    assert {status[u] for u in communes} == {"missing"} and not communes & published.keys()
    reasons = {r[3] for r in _findings(var, "completeness.missing_report") if r[2] in communes}
    partly = [r for r in reasons if "chỉ có hồ sơ từ phần mềm một cửa chưa đầy đủ (portal_dvc)" in r]
    assert partly and all("commune_spreadsheets" in r and f"has no folder {PERIOD}" in r for r in reasons)
    assert _findings(var, "reconcile.incomplete_coverage") == []
    # every other unit keeps the figures of the complete run
    others = {u: v for u, v in reference["published"].items() if u not in communes}
    assert {u: published[u] for u in others} == others
    assert summary["sources"]["commune_spreadsheets"] == {"missing": why}


@pytest.mark.xdist_group("inputs")
def test_a_missing_period_folder_on_a_rerun_keeps_the_communes_on_the_last_good_workbooks(
        reference, small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    _, first, _ = _run(var, small_sample, "good")
    assert first["published"]["vintage"] == 1 and _published(var) == reference["published"]
    share = _share_without_the_period(small_sample, tmp_path)
    ctx, second, refused = _run(var, small_sample, "no-inbox", TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(share))
    assert refused is None and second["published"] == {**second["published"], "vintage": 1, "new_vintage": False}
    assert _published(var) == reference["published"]
    stale = _findings(var, "extract.stale_landing")
    assert [(s[0], s[1]) for s in stale] == [("warning", "commune_spreadsheets")]
    assert f"has no folder {PERIOD}" in stale[0][3]


def test_a_source_not_expected_every_period_lands_nothing_for_a_missing_folder(small_sample, tmp_path, var):
    from extractors.registry import extract_source
    from tthc.config import ConfigError, load_settings

    settings = load_settings()
    source = settings.source("commune_spreadsheets")
    assert source.expected
    share = _share_without_the_period(small_sample, tmp_path)
    source.spec["expected"] = False
    with env(TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(share)):
        manifest = json.loads(extract_source(source, settings.period(PERIOD), var, "r1", settings).read_text())
    assert manifest["status"] == "ok" and manifest["rows"] == 0
    source.spec["expected"] = "yes"
    with pytest.raises(ConfigError, match="expected 'yes' must be true or false"):
        assert source.expected


# ---------------------------------------------------------------- 2. two complete sources for one unit

@pytest.mark.xdist_group("inputs")
def test_two_complete_sources_for_one_department_never_publish_zeros(reference, small_sample, tmp_path):
    """The portal's covers forget to exclude two departments that keep their own database
    (000.00.07 and 000.00.08): the portal has none of their dossiers. A second source reading the
    same database claims 000.00.08 as well, so two sources have its dossiers."""
    from tthc.config import Source, load_settings

    settings = load_settings()
    portal = settings.source("portal_dvc")
    portal.spec["covers"][0]["exclude"] = [u for u in portal.spec["covers"][0]["exclude"] if u not in (MOVED, TWICE)]
    agency = settings.source("agency_db_xd_tnmt")
    settings.sources.append(Source("agency_db_copy", "agency_db", {
        **agency.spec, "id": "agency_db_copy",
        "covers": [{"level": "department", "units": [TWICE], "complete": True}]}))
    period = settings.period(PERIOD)
    assert portal.coverage(MOVED, "department", period) and agency.coverage(MOVED, "department", period)

    var = new_var(tmp_path, small_sample)
    _, summary, refused = _run(var, small_sample, "overlap", settings=settings)
    assert refused is None
    published = _published(var)
    want = reference["published"][MOVED]
    assert want[1] == "agency_db_xd_tnmt" and want[2] > 0
    # the source that has the department's dossiers wins: the complete run's figures, flagged
    assert published[MOVED][0] == "warning" and published[MOVED][1:] == want[1:]
    # two sources with its dossiers: withheld, quarantined, never 0
    assert TWICE not in published
    status = dict(_query(var, "SELECT unit_code, quality_status || ' ' || coalesce(reason, '') "
                              "FROM core.unit_period_status"))
    assert status[TWICE].startswith("critical") and "agency_db_xd_tnmt, agency_db_copy" in status[TWICE]
    quarantined = dict(_query(var, "SELECT unit_code, reason FROM quality.quarantine"))
    assert "portal_dvc, agency_db_xd_tnmt, agency_db_copy" in quarantined[TWICE]

    overlaps = {f[2]: f for f in _findings(var, "reconcile.overlapping_sources")}
    assert overlaps.keys() == {MOVED, TWICE}
    severity, source, _, message = overlaps[MOVED]
    assert (severity, source) == ("warning", "agency_db_xd_tnmt")
    assert "(portal_dvc, agency_db_xd_tnmt)" in message and "chỉ nguồn agency_db_xd_tnmt có hồ sơ" in message
    assert "sửa covers trong config/sources.yaml" in message
    severity, _, _, message = overlaps[TWICE]
    assert severity == "critical" and "(portal_dvc, agency_db_xd_tnmt, agency_db_copy)" in message
    assert "chưa công bố" in message
    # no published department from records shows a quarter of zeros where the complete run had dossiers
    zeros = [u for u, row in published.items() if row[2] == 0 and reference["published"].get(u, row)[2] > 0]
    assert zeros == []


@pytest.mark.xdist_group("inputs")
def test_the_other_complete_source_down_withholds_the_unit_rather_than_publish_zeros(reference, small_sample, tmp_path):
    from tthc.config import load_settings

    settings = load_settings()
    portal = settings.source("portal_dvc")
    portal.spec["covers"][0]["exclude"] = [u for u in portal.spec["covers"][0]["exclude"] if u != MOVED]
    var = new_var(tmp_path, small_sample)
    _, summary, refused = _run(var, small_sample, "overlap-down", settings=settings,
                               AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT=None)
    assert refused is None and "agency_db_xd_tnmt" in summary["sources"] and "missing" in summary["sources"]["agency_db_xd_tnmt"]
    assert MOVED not in _published(var)
    status = dict(_query(var, "SELECT unit_code, quality_status FROM core.unit_period_status"))
    assert status[MOVED] == "missing"
    (finding,) = _findings(var, "reconcile.overlapping_sources")
    assert finding[2] == MOVED and "(portal_dvc, agency_db_xd_tnmt)" in finding[3] and "không công bố số 0" in finding[3]


# ---------------------------------------------------------------- 3. implausible dates

FUTURE_ID, ANCIENT_ID = "XD-NHAP-2099", "XD-NHAP-1900"


def _sample_with_implausible_dates(sample: Path, root: Path) -> Path:
    """The sample whose agency database has two more finished dossiers of 000.00.07: one typed as
    received in 2099 and one in 1900, both finished in May 2024."""
    copy = root / "implausible-sample"
    copy.mkdir()
    for part in sample.iterdir():
        if part.name != "agency_db":
            (copy / part.name).symlink_to(part, target_is_directory=part.is_dir())
    (copy / "agency_db").mkdir()
    shutil.copy(sample / "agency_db" / "agency.sqlite", copy / "agency_db" / "agency.sqlite")
    with sqlite3.connect(copy / "agency_db" / "agency.sqlite") as con:
        for dossier_id, received in ((FUTURE_ID, "2099-05-02 08:00:00"), (ANCIENT_ID, "1900-05-02 08:00:00")):
            con.execute(
                "INSERT INTO hs_hoso (so_hs, ma_tthc, linh_vuc, don_vi, hinh_thuc, ngay_nhan, han_tra, ngay_xong, "
                "ngay_tra, trang_thai, le_phi, tt_online, so_hoa_kq, cap_nhat) "
                "SELECT ?, ma_tthc, linh_vuc, don_vi, 'TRUCTIEP', ?, '2024-05-20 17:00:00', '2024-05-10 10:00:00', "
                "NULL, 'XONG', le_phi, tt_online, so_hoa_kq, '2024-05-10 10:00:00' "
                "FROM hs_hoso WHERE don_vi = ? AND linh_vuc IS NOT NULL ORDER BY so_hs LIMIT 1",
                (dossier_id, received, MOVED))
    return copy


@pytest.mark.xdist_group("inputs")
def test_records_dated_implausibly_are_kept_counted_and_named(reference, small_sample, tmp_path):
    sample = _sample_with_implausible_dates(small_sample, tmp_path)
    var = new_var(tmp_path, sample)
    ctx, summary, refused = _run(var, sample, "implausible")
    assert refused is None
    kept = pq.read_table(ctx.files.dossiers, filters=[("dossier_id", "in", [FUTURE_ID, ANCIENT_ID])]).to_pylist()
    assert sorted(r["dossier_id"] for r in kept) == [ANCIENT_ID, FUTURE_ID]
    landed = pq.read_table(var / "landing" / PERIOD / "agency_db_xd_tnmt" / "dossiers.parquet").column("dossier_id")
    assert {FUTURE_ID, ANCIENT_ID} <= set(landed.to_pylist())

    future = [f for f in _findings(var, "records.date_in_future") if f[1] == "agency_db_xd_tnmt"]
    assert any("1 hồ sơ có received_at sau thời điểm chạy" in f[3] and f"{FUTURE_ID}='2099-05-02 08:00:00'" in f[3]
               for f in future), future
    (ancient,) = [f for f in _findings(var, "records.date_implausible") if "received_at" in f[3]]
    assert ancient[:2] == ("warning", "agency_db_xd_tnmt")
    assert "1 hồ sơ có received_at trước ngày 2000-01-01" in ancient[3] and f"{ANCIENT_ID}='1900-05-02 08:00:00'" in ancient[3]
    assert "vẫn được giữ và tính theo ngày đã ghi" in ancient[3]

    # counted: the 2099 one as received and resolved in the quarter (it was received by the time it was
    # finished), the 1900 one as carried over and resolved; the form's balance holds
    before, after = reference["published"][MOVED], _published(var)[MOVED]
    names = ("received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
             "pending_total", "returned_withdrawn")
    delta = {n: after[2 + i] - before[2 + i] for i, n in enumerate(names)}
    assert delta == {"received_total": 2, "received_online": 0, "received_direct_postal": 1, "carried_over": 1,
                     "resolved_total": 2, "pending_total": 0, "returned_withdrawn": 0}
    assert after[2] == after[6] + after[7] + after[8]


def test_the_plausible_window_is_configurable(tmp_path):
    from datetime import date

    from tthc.config import ConfigError, load_settings

    settings = load_settings()
    assert settings.plausible_from == date(2000, 1, 1)
    settings.province_doc["reliability"] = {"plausible_from": "2010-01-01"}
    assert settings.plausible_from == date(2010, 1, 1)
    settings.province_doc["reliability"] = {"plausible_from": "ngày xưa"}
    with pytest.raises(ConfigError, match="plausible_from 'ngày xưa' is not a date"):
        assert settings.plausible_from


# ---------------------------------------------------------------- 4. the run's time budget

@pytest.mark.xdist_group("inputs")
def test_a_run_over_its_time_budget_fails_the_slow_source_and_keeps_its_last_good_landing(
        reference, small_sample, tmp_path, capsys, caplog):
    from runner.cli import _print_summary
    from simulator.server import serve
    from tthc.config import ConfigError, load_settings

    var = new_var(tmp_path, small_sample)
    _, first, _ = _run(var, small_sample, "good")
    assert first["published"]["vintage"] == 1 and "over_budget" in first and first["over_budget"] == {}
    landed_at = json.loads((var / "landing" / PERIOD / "portal_dvc" / "manifest.json").read_text())["extracted_at"]

    token = secrets.token_urlsafe(16)
    slow = serve(small_sample, token)
    slow.faults["queue"] = [{"slow": 20}] * 50  # every page takes 20 s
    portal = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": slow.port, "schema": "http",
                         "password": token, "extra": {"auth_type": "bearer"}})
    settings = load_settings()
    settings.province_doc["reliability"] = {"run_budget_seconds": 600}  # the environment overrides it
    try:
        with caplog.at_level("INFO", logger="runner.pipeline"):
            ctx, second, refused = _run(var, small_sample, "slow", settings=settings,
                                        AIRFLOW_CONN_TTHC_PORTAL_DVC=portal, TTHC_RUN_BUDGET_SECONDS="3")
    finally:
        slow.shutdown()
    assert refused is None
    assert settings.province_doc["reliability"]["run_budget_seconds"] == 600
    # the portal stopped at the budget, not at its own 30 s timeout; the sources after it were not started
    failed = ctx.landed()["failed"]
    assert "run's time budget (3s, reliability.run_budget_seconds) is spent after" in failed["portal_dvc"]
    assert "HTTP calls: nothing landed (" in failed["portal_dvc"]  # the call it cut short, with its error
    assert failed["portal_dvc"].startswith("RunBudgetSpent: ")
    assert all("was spent before it was started: not tried" in failed[s] for s in failed if s != "portal_dvc")
    assert set(second["over_budget"]) == set(failed) and "portal_dvc" in failed
    # every extraction together: the budget and the one call it cut short, not the portal's 30 s timeout
    (took,) = [float(r.getMessage().split("extraction took ")[1].split("s")[0]) for r in caplog.records
               if "extraction took" in r.getMessage()]
    assert took < 15, took
    # every failed source kept on its last good landing: the same figures, no new vintage
    assert second["published"]["vintage"] == 1 and not second["published"]["new_vintage"]
    assert _published(var) == reference["published"]
    stale = {f[1]: f for f in _findings(var, "extract.stale_landing")}
    assert stale.keys() == set(failed)
    assert "vì hết thời gian cho phép của cả lần chạy (reliability.run_budget_seconds)" in stale["portal_dvc"][3]
    assert landed_at in stale["portal_dvc"][3]
    _print_summary(second)
    printed = capsys.readouterr().out
    assert "over the run's time budget: portal_dvc (its last good landing used): RunBudgetSpent" in printed

    with env(TTHC_RUN_BUDGET_SECONDS="soon"), pytest.raises(ConfigError, match="TTHC_RUN_BUDGET_SECONDS 'soon'"):
        assert load_settings().run_budget_seconds
