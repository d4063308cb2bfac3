"""Every subset of the sample's three sources down or empty, in every quarter of the sample,
on DuckDB and PostgreSQL: the run finishes without a traceback, names each missing source, and
publishes what it can, never a unit as 0 whose records did not arrive under its code.

Sources: `portal_dvc` (HTTP API), `agency_db_xd_tnmt` (SQLite vendor database),
`commune_spreadsheets` (workbooks), served by `runner.local_sources.sample_connections` from
the session's `small_sample` (2 %). Each source is, in a combination:

- present: landed by a real extraction. In every quarter the agency database lists department
  000.00.07.H04 under the vendor's own unit id `XD-07` (as a vendor database whose unit-id
  lookup failed lands it), so "present" always carries unplaced records: that department must
  be withheld (critical, in `quality.quarantine`, a `records.unit_unknown` finding with the
  source, the raw id and the dossier count), never published as 0;
- empty: a real extraction that lands 0 records (an empty portal, an emptied vendor table, a
  spreadsheets folder with no workbook for the quarter);
- down: a real failed extraction (no connection for the portal and the database, a
  spreadsheets folder that does not exist), which leaves `failed.json`.

Each quarter is landed once per xdist worker in the three states (nine extractions); each
combination copies the landing folders it needs into a fresh var/ and runs the stages after
extraction (`runner.pipeline.STAGES`) into a fresh warehouse. What is run, and why:

- DuckDB, all 27 combinations, in 2025-Q2 (the last quarter before the 1 July 2025 reform:
  districts, old communes, the portal covering communes partly) and 2025-Q3 (the first after:
  no districts, new communes covered completely by the portal);
- DuckDB, the other six quarters (2024-Q1 … 2025-Q1, 2025-Q4): the all-present reference and
  three combinations rotating over the quarters, so that each source is down alone in two of
  them and empty beside another one down in two, and all down and all empty each occur in three;
- PostgreSQL (127.0.0.1:5432, a database made and dropped per test): four combinations each
  in 2025-Q2 and 2025-Q3, including all down (load refuses) and all empty (no vintage),
  compared with the DuckDB reference of the quarter;
- DuckDB, 2025-Q3 into a warehouse that already holds 2025-Q2's all-present publication, six
  combinations (all present, all down, all empty, each kind of source down): the continuity and
  hand-over checks then read a previous quarter whatever landed now, and 2025-Q2 stays as it was.

Invariants of every combination (`check`):
1. no exception but `NothingPublished`, and only when nothing may be published: every source
   down (load refuses, the warehouse untouched) or no unit publishable (no vintage, no files);
2. each down source is named by an `extract.source_missing` finding, each empty one by an
   `extract.source_empty` finding;
3. no published unit has received 0 from a records source that has `records.unit_unknown`
   findings; with the agency database present, 000.00.07.H04 is withheld and quarantined
   with a reason naming the source;
4. a unit none of whose candidate sources (its `covers` rules) is present is not published
   and its status is `missing`;
   with the workbooks down, no commune is published from records that cover it partly;
5. a published unit whose winning source is present and won it in the all-present run has
   exactly the all-present run's figures; no published unit comes from a source down or empty.

GX Data Docs are not built (they do not depend on the sources and cost a third of each run).
About 2–3 minutes with `-n 2` on the 2-core machine (the 54 DuckDB runs of the two reform
quarters take about two thirds of it).
"""
from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.support.databases import throwaway_database
from runner.local_sources import environment as env
from tthc.form import FIGURES, PUBLISHED_STATUSES, REPORTING_LEVELS

SOURCES = ("portal_dvc", "agency_db_xd_tnmt", "commune_spreadsheets")
STATES = ("present", "empty", "down")
RECORDS_SOURCES = ("portal_dvc", "agency_db_xd_tnmt")
RAW_ID, RAW_UNIT = "XD-07", "000.00.07.H04"  # the vendor's unit id the agency database lists this department under
REFORM_QUARTERS = ("2025-Q2", "2025-Q3")
OTHER_QUARTERS = ("2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q4")
ALL_PRESENT = ("present",) * 3


def rotating(index: int) -> list[tuple[str, str, str]]:
    """Three combinations for the index-th other quarter: one source down, the same down with
    the next one empty, and by turns everything down or everything empty."""
    down, empty = index % 3, (index + 1) % 3

    def combo(states: dict[int, str]) -> tuple[str, str, str]:
        return tuple(states.get(i, "present") for i in range(3))

    last = ("down",) * 3 if index % 2 == 0 else ("empty",) * 3
    return [combo({down: "down"}), combo({down: "down", empty: "empty"}), last]


def name(combo: tuple[str, ...]) -> str:
    return "-".join(f"{s.split('_')[0]}:{state}" for s, state in zip(SOURCES, combo))


DUCKDB_CASES = [(q, c) for q in REFORM_QUARTERS for c in itertools.product(STATES, repeat=3)] + \
               [(q, c) for i, q in enumerate(OTHER_QUARTERS) for c in rotating(i)]
POSTGRES_CASES = [("2025-Q2", c) for c in [ALL_PRESENT, ("down", "present", "empty"), ("empty",) * 3, ("down",) * 3]] + \
                 [("2025-Q3", c) for c in [ALL_PRESENT, ("empty", "down", "present"), ("present", "down", "down"),
                                           ("down",) * 3]]


# ---------------------------------------------------------------- landing each quarter once per worker

def _samples(small_sample: Path, root: Path) -> dict[str, Path]:
    """The sample as served when present (the agency database listing one department under the
    vendor's own id) and an empty one (no portal record, an emptied table, no workbook)."""
    present = root / "present-sample"
    present.mkdir(parents=True)
    for part in ("portal", "spreadsheets", "sample.json"):
        (present / part).symlink_to(small_sample / part)
    (present / "agency_db").mkdir()
    shutil.copy(small_sample / "agency_db" / "agency.sqlite", present / "agency_db" / "agency.sqlite")
    with sqlite3.connect(present / "agency_db" / "agency.sqlite") as con:
        con.execute("UPDATE hs_hoso SET don_vi = ? WHERE don_vi = ?", (RAW_ID, RAW_UNIT))

    empty = root / "empty-sample"
    (empty / "portal").mkdir(parents=True)
    portal = pq.read_table(small_sample / "portal" / "dossiers.parquet")
    pq.write_table(portal.slice(0, 0), empty / "portal" / "dossiers.parquet")
    (empty / "agency_db").mkdir()
    shutil.copy(small_sample / "agency_db" / "agency.sqlite", empty / "agency_db" / "agency.sqlite")
    with sqlite3.connect(empty / "agency_db" / "agency.sqlite") as con:
        con.execute("DELETE FROM hs_hoso")
    (empty / "spreadsheets").mkdir()
    return {"present": present, "empty": empty}


class Landings:
    """Per quarter and state, a var/ whose landing holds what the three extractions left;
    per quarter, the all-present run on DuckDB (the reference)."""

    def __init__(self, small_sample: Path, root: Path):
        self.root = root
        self.samples = _samples(small_sample, root)
        self.landed: dict[tuple[str, str], Path] = {}
        self.references: dict[str, dict] = {}
        self._template: Path | None = None

    def warehouse(self, var: Path) -> str:
        """A fresh DuckDB warehouse in `var`, copied from one already migrated (saves each run the migrations)."""
        from warehouse.db import engine_for, migrate

        if self._template is None:
            self._template = self.root / "migrated.duckdb"
            with engine_for(f"duckdb:///{self._template}") as engine:
                migrate(engine)
        shutil.copy(self._template, var / "warehouse.duckdb")
        return f"duckdb:///{var / 'warehouse.duckdb'}"

    def var(self, period: str, state: str) -> Path:
        if (period, state) not in self.landed:
            self.landed[(period, state)] = self._land(period, state)
        return self.landed[(period, state)]

    def _land(self, period: str, state: str) -> Path:
        from runner import pipeline
        from runner.local_sources import sample_connections

        var = self.root / f"{period}-{state}"
        var.mkdir()
        if state == "empty":
            (self.samples["empty"] / "spreadsheets" / period).mkdir(exist_ok=True)
        down = {"AIRFLOW_CONN_TTHC_PORTAL_DVC": None, "AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT": None,
                "TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH": str(self.root / "no-such-share")}
        with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None):
            ctx = pipeline.make_context(period, run_id=f"land-{state}")
            for source in SOURCES:
                if state == "down":
                    with env(**down), pytest.raises(Exception) as failure:  # noqa: B017 - each kind fails its own way
                        pipeline.extract(ctx, source)
                    assert (var / "landing" / period / source / "failed.json").exists(), failure.value
                    continue
                with sample_connections(self.samples[state]):
                    manifest = json.loads(Path(pipeline.extract(ctx, source)).read_text())
                assert (manifest["rows"] == 0) == (state == "empty"), (period, source, state, manifest["rows"])
        return var

    def reference(self, period: str) -> dict:
        if period not in self.references:
            outcome = run_combination(self, period, ALL_PRESENT, self.root / f"{period}-reference", None)
            assert outcome["error"] is None, outcome["error"]
            self.references[period] = outcome
        return self.references[period]


@pytest.fixture(autouse=True)
def no_data_docs(monkeypatch):
    """GX Data Docs are not built here: they do not depend on the sources and cost a third of a run."""
    import validations.quarter
    from validations.gx import GxSession

    monkeypatch.setattr(validations.quarter, "GxSession", lambda docs_dir=None: GxSession(None))


@pytest.fixture(scope="module")
def landings(small_sample, tmp_path_factory) -> Landings:
    return Landings(small_sample, tmp_path_factory.mktemp("matrix"))


# ---------------------------------------------------------------- one combination

def run_combination(landings: Landings, period: str, combo: tuple[str, ...], var: Path, url: str | None) -> dict:
    """The stages after extraction on the chosen landings; what they left."""
    from runner import pipeline

    var.mkdir(parents=True)
    for source, state in zip(SOURCES, combo):
        shutil.copytree(landings.var(period, state) / "landing" / period / source, var / "landing" / period / source)
    url = url or landings.warehouse(var)
    error = stage_name = None
    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None):
        ctx = pipeline.make_context(period, run_id="matrix", warehouse_url=url)
        for stage in pipeline.STAGES:
            stage_name = stage.__name__
            try:
                stage(ctx)
            except pipeline.NothingPublished as exc:  # anything else fails the test with its traceback
                error = f"{stage_name}: {exc}"
                break
        findings = pa.concat_tables([pq.read_table(p) for p in ctx.files.findings if p.exists()]).to_pandas()
        status = pd.read_parquet(ctx.files.unit_status)
        units = ctx.units_in_force
        settings = ctx.settings
        period_obj = ctx.period
    outcome = {"error": error, "findings": findings, "status": status, "units": units, "settings": settings,
               "period": period_obj, "var": var, "url": url, "combo": combo,
               "loaded": error is None or stage_name == "publish"}
    outcome.update(warehouse_rows(url, period_obj) if outcome["loaded"] else
                   {"published": pd.DataFrame(columns=["unit_code", "source_id", "basis", "quality_status", *FIGURES]),
                    "quarantine": pd.DataFrame(columns=["unit_code", "source_id", "reason"]), "vintages": 0})
    return outcome


def warehouse_rows(url: str, period) -> dict:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    params = {"s": period.start, "e": period.end}
    try:
        with engine.connect() as conn:
            published = pd.read_sql(sa.text(
                f"SELECT unit_code, source_id, basis, quality_status, {', '.join(FIGURES)} FROM publish.bieu06_by_unit "
                "WHERE period_start = :s AND period_end = :e"), conn, params=params)
            quarantine = pd.read_sql(sa.text(
                "SELECT unit_code, source_id, reason FROM quality.quarantine WHERE period_start = :s AND period_end = :e"),
                conn, params=params)
            vintages = conn.execute(sa.text("SELECT count(*) FROM publish.vintages WHERE period_start = :s"),
                                    params).scalar()
    finally:
        engine.dispose()
    return {"published": published, "quarantine": quarantine, "vintages": vintages}


def check(outcome: dict, reference: dict) -> None:
    combo, findings, status = outcome["combo"], outcome["findings"], outcome["status"]
    state = dict(zip(SOURCES, combo))
    present = {s for s in SOURCES if state[s] == "present"}

    # 1. only a clear "nothing published", and only when nothing can be
    if outcome["error"] is not None:
        if outcome["error"].startswith("load:"):
            assert set(combo) == {"down"}, outcome["error"]
            assert all(s in outcome["error"] for s in SOURCES)  # each named, with why
            if outcome["url"].startswith("duckdb"):  # the warehouse is not touched: as migrated, no period loaded
                assert warehouse_rows(outcome["url"], outcome["period"])["vintages"] == 0
        else:
            assert outcome["error"].startswith("publish: "), outcome["error"]
            assert not status["quality_status"].isin(PUBLISHED_STATUSES).any()
            assert outcome["vintages"] == 0 and not (outcome["var"] / "publish").exists()
    else:
        assert outcome["vintages"] == 1 and len(outcome["published"]) > 0

    # 2. every source down or empty named in a finding
    named = {(c, s) for c, s in zip(findings["check_id"], findings["source_id"])}
    for source in SOURCES:
        if state[source] == "down":
            assert ("extract.source_missing", source) in named, source
        if state[source] == "empty":
            assert ("extract.source_empty", source) in named, source
        if state[source] == "present":
            assert ("extract.source_missing", source) not in named and ("extract.source_empty", source) not in named

    # 3. never 0 for a unit whose records arrived under another code
    published = outcome["published"].set_index("unit_code")
    unplaced = findings[findings["check_id"] == "records.unit_unknown"]
    if state["agency_db_xd_tnmt"] == "present":
        raw = unplaced[unplaced["source_id"] == "agency_db_xd_tnmt"]
        assert raw["unit_code"].tolist() == [RAW_ID] and int(raw["observed"].iloc[0]) > 0
        assert "agency_db_xd_tnmt" in raw["message"].iloc[0] and RAW_ID in raw["message"].iloc[0]
        assert RAW_UNIT not in published.index
        row = status.set_index("unit_code").loc[RAW_UNIT]
        assert row["quality_status"] == "critical" and "agency_db_xd_tnmt" in row["reason"]
        if outcome["loaded"]:
            quarantined = outcome["quarantine"].set_index("unit_code")
            assert "agency_db_xd_tnmt" in quarantined.loc[RAW_UNIT, "reason"]
    zero = published[(published["basis"] == "records") & (published["received_total"] == 0)]
    assert not set(zero["source_id"]) & set(unplaced["source_id"]), zero

    # 4. a unit with no candidate source present is missing, not published
    settings, period = outcome["settings"], outcome["period"]
    decided = status.set_index("unit_code")
    for unit in outcome["units"][outcome["units"]["level"].isin(REPORTING_LEVELS)].itertuples():
        candidates = {s.id for s in settings.sources if s.coverage(unit.unit_code, unit.level, period) is not None}
        if not candidates & present:
            assert decided.loc[unit.unit_code, "quality_status"] == "missing", unit.unit_code
            assert unit.unit_code not in published.index

    # 4b. the workbooks down: no commune stands on partial records in their place
    if state["commune_spreadsheets"] == "down":
        levels = outcome["units"].set_index("unit_code")["level"]
        stand_ins = [u for u in published.index if levels.get(u) == "commune" and
                     not settings.source(published.loc[u, "source_id"]).coverage(u, "commune", period)]
        assert stand_ins == [], stand_ins

    # 5. published figures: those of the all-present run where the same present source won
    assert set(published["source_id"]) <= present, set(published["source_id"]) - present
    expected = reference["published"].set_index("unit_code")
    same = [u for u in published.index if u in expected.index and published.loc[u, "source_id"] ==
            expected.loc[u, "source_id"]]
    if combo == ALL_PRESENT:
        assert len(same) == len(published) == len(expected)
    if not same:
        return
    got = published.loc[same, list(FIGURES)].astype("int64")
    want = expected.loc[same, list(FIGURES)].astype("int64")
    pd.testing.assert_frame_equal(got, want)


# ---------------------------------------------------------------- the matrix

@pytest.mark.parametrize("period,combo", [pytest.param(q, c, id=f"{q}-{name(c)}",
                                                       marks=pytest.mark.xdist_group(f"matrix-{q}"))
                                          for q, c in DUCKDB_CASES])
def test_sources_down_or_empty_on_duckdb(landings, period, combo, tmp_path):
    reference = landings.reference(period)
    outcome = reference if combo == ALL_PRESENT else run_combination(landings, period, combo, tmp_path / "var", None)
    check(outcome, reference)


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database on 127.0.0.1, dropped afterwards."""
    with throwaway_database("postgresql", "tthc_matrix") as url:
        yield url


@pytest.mark.services
@pytest.mark.parametrize("period,combo", [pytest.param(q, c, id=f"{q}-{name(c)}",
                                                       marks=pytest.mark.xdist_group(f"matrix-{q}"))
                                          for q, c in POSTGRES_CASES])
def test_sources_down_or_empty_on_postgresql(landings, period, combo, postgres_database, tmp_path):
    reference = landings.reference(period)  # DuckDB's: the same figures are expected on either warehouse
    outcome = run_combination(landings, period, combo, tmp_path / "var", postgres_database)
    check(outcome, reference)


# ---------------------------------------------------------------- with the previous quarter in the warehouse

AFTER_PREVIOUS = [ALL_PRESENT, ("down",) * 3, ("empty",) * 3, ("down", "present", "present"),
                  ("present", "present", "down"), ("empty", "down", "present")]


@pytest.mark.xdist_group("matrix-2025-Q3")
@pytest.mark.parametrize("combo", AFTER_PREVIOUS, ids=name)
def test_sources_down_or_empty_after_the_previous_quarter_was_published(landings, combo, tmp_path):
    """2025-Q3 run into a warehouse that already holds 2025-Q2's all-present publication: the
    continuity and hand-over checks then have a previous quarter to read, whatever landed now;
    the same invariants hold, and 2025-Q2's vintage is left as it was."""
    previous = landings.reference("2025-Q2")
    copied = tmp_path / "warehouse.duckdb"
    shutil.copy(previous["url"].removeprefix("duckdb:///"), copied)
    before = warehouse_rows(f"duckdb:///{copied}", previous["period"])
    outcome = run_combination(landings, "2025-Q3", combo, tmp_path / "var", f"duckdb:///{copied}")
    check(outcome, landings.reference("2025-Q3"))

    after = warehouse_rows(f"duckdb:///{copied}", previous["period"])
    assert after["vintages"] == before["vintages"] == 1
    pd.testing.assert_frame_equal(after["published"].sort_values("unit_code").reset_index(drop=True),
                                  before["published"].sort_values("unit_code").reset_index(drop=True))
    unchecked = outcome["findings"][outcome["findings"]["check_id"] == "continuity.unchecked"]
    assert not unchecked["message"].str.contains("của mọi đơn vị chưa được đối chiếu").any(), \
        "2025-Q2 is in the warehouse: continuity had a previous quarter to read"
    assert RAW_ID not in set(unchecked["unit_code"]), "a code not in force is a unit.known finding, not a continuity one"


def test_the_matrix_covers_what_its_docstring_says():
    assert len({c for q, c in DUCKDB_CASES if q == "2025-Q2"}) == len({c for q, c in DUCKDB_CASES if q == "2025-Q3"}) == 27
    others = [c for q, c in DUCKDB_CASES if q in OTHER_QUARTERS]
    for i in range(3):
        assert sum(c[i] == "down" for c in others) >= 2 and sum(c[i] == "empty" for c in others) >= 2
    assert ("down",) * 3 in others and ("empty",) * 3 in others
    assert any("down" in c and "empty" in c for c in others)
    assert {q for q, _ in DUCKDB_CASES} == set(REFORM_QUARTERS + OTHER_QUARTERS)


# ---------------------------------------------------------------- `tthc run` without the sample's connections

def test_tthc_run_without_connections_ends_with_a_clear_message_and_exit_4(var, small_sample, monkeypatch, capsys):
    """`tthc run --period 2024-Q2` with no connection set: each source's failure named, no
    traceback, nothing loaded, exit 4; with only the workbooks' share reachable it publishes
    the communes (it used to fail in the roll-up with no record rows)."""
    from runner.cli import main

    for variable in ("AIRFLOW_CONN_TTHC_PORTAL_DVC", "AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(var / "share-not-mounted"))
    assert main(["run", "--period", "2024-Q2"]) == 4
    err = capsys.readouterr().err
    assert "nothing published: 2024-Q2: no source landed" in err and "Traceback" not in err
    assert "no connection 'tthc_portal_dvc'" in err and "no connection 'tthc_agency_db_xd_tnmt'" in err
    assert "share-not-mounted does not exist" in err
    assert not (var / "publish").exists()

    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(small_sample / "spreadsheets"))
    assert main(["run", "--period", "2024-Q2"]) == 0
    out = capsys.readouterr().out
    published = int(out.split("published: ")[1].split(" units")[0])
    assert 100 < published < 188  # the communes, not the departments and districts of the two records sources

    # the next quarter with every source down again, now with a previous quarter in the warehouse
    # (the continuity check used to index an empty frame with an empty list and lose its columns)
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(var / "share-not-mounted"))
    assert main(["run", "--period", "2024-Q3"]) == 4
    err = capsys.readouterr().err
    assert "nothing published: 2024-Q3: no source landed" in err and "Traceback" not in err
    assert not (var / "publish" / "2024-Q3").exists() and (var / "publish" / "2024-Q2").exists()
