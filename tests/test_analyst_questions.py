"""Eight everyday questions of a provincial analyst, each one SQL statement over `publish` alone,
asked as the read-only analyst (a login granted `tthc_analyst` on PostgreSQL, the analysts' copy
on the embedded warehouse), after two quarters on either side of the 2025 reform, and checked
against the simulator's ground truth: dossier records for units published from records, the
figures the commune typed for units published from their workbooks."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.support.databases import throwaway_database
from tests.test_e2e_dag import expected_from_truth
from tests.test_warehouse_faults import TTHC, admin, as_login, new_var, tthc
from tthc.form import FIGURES
from warehouse.analyst_copy import analyst_copy_path

pytestmark = pytest.mark.xdist_group("analyst_questions")
QUARTERS = ("2025-Q2", "2025-Q3")
BEFORE, AFTER = QUARTERS


def _run_quarters(var: Path, url: str | None = None) -> None:
    for quarter in QUARTERS:
        result = tthc(var, url=url, period=quarter)
        assert result.returncode in (0, 4), result.stderr[-3000:]  # 4: published with critical findings


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def analyst(request, small_sample, tmp_path_factory):
    """(query, var): `query(sql)` runs one statement as the analyst and returns a frame."""
    var = new_var(tmp_path_factory.mktemp("questions"), small_sample)
    if request.param == "duckdb":
        _run_quarters(var)

        def query(sql: str) -> pd.DataFrame:
            with duckdb.connect(str(analyst_copy_path(var)), read_only=True) as con:
                return con.sql(sql).df()

        yield query, var
        return
    suffix = uuid.uuid4().hex[:8]
    loader, reader, login = f"loader_{suffix}", f"analyst_{suffix}", f"reader_{suffix}"
    with throwaway_database("postgresql", "tthc_questions") as url:
        try:
            _run_quarters(var, url)
            made = subprocess.run([str(TTHC), "warehouse-roles", "--warehouse", url, "--loader", loader,
                                   "--analyst", reader], capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
            assert made.returncode == 0, made.stderr[-3000:]
            admin(url, f'CREATE ROLE "{login}" LOGIN IN ROLE "{reader}"')
            engine = sa.create_engine(as_login(url, login), poolclass=sa.pool.NullPool)

            def query(sql: str) -> pd.DataFrame:
                with engine.connect() as conn:
                    return pd.read_sql(sa.text(sql), conn)

            yield query, var
            engine.dispose()
        finally:
            admin(url, f'DROP ROLE IF EXISTS "{login}"', *[f'DROP OWNED BY "{r}"' for r in (loader, reader)],
                  *[f'DROP ROLE IF EXISTS "{r}"' for r in (loader, reader)])


@pytest.fixture(scope="module")
def truth(small_sample) -> dict[str, pd.DataFrame]:
    """Per quarter, the true figures by source, unit and field: records from the dossiers, and the
    communes' workbooks as typed."""
    dossiers = pd.read_parquet(small_sample / "ground_truth" / "dossiers.parquet")
    dossiers = dossiers[dossiers["served_by"] != "none"]
    excluded = pd.read_csv(small_sample / "ground_truth" / "vendor_exclusions.csv", dtype=str)
    dossiers = dossiers[~dossiers["dossier_id"].isin(excluded["dossier_id"])]
    sheets = pd.read_parquet(small_sample / "ground_truth" / "spreadsheet_figures.parquet")
    out = {}
    for quarter in QUARTERS:
        start = pd.Timestamp(_start(quarter))
        # each dossier at the unit holding it in the quarter, in the software that holds it
        held = dossiers.assign(unit_code=dossiers["handed_over_to"].fillna(dossiers["unit_code"]),
                               source_id=dossiers["handed_over_in"].fillna(dossiers["source_id"])) \
            if start >= pd.Timestamp("2025-07-01") else dossiers
        records = expected_from_truth(held, start, start + pd.DateOffset(months=3)).assign(basis="records")
        typed = sheets[(sheets["period"] == quarter) & sheets["filed"]]
        typed = typed.rename(columns={f"reported_{f}": f for f in FIGURES})[["unit_code", "field_code", *FIGURES]]
        out[quarter] = pd.concat([records, typed.assign(source_id="commune_spreadsheets", basis="self_reported")])
    return out


def _start(quarter: str) -> str:
    year, q = quarter.split("-Q")
    return f"{year}-{3 * (int(q) - 1) + 1:02d}-01"


def _expected_units(truth: dict, query, quarter: str) -> pd.DataFrame:
    """The true figures of the units the quarter publishes, from the source each was published from."""
    published = query(f"SELECT unit_code, source_id FROM publish.bieu06_by_unit WHERE period_label = '{quarter}'")
    rows = truth[quarter].merge(published, on=["unit_code", "source_id"])
    return rows.groupby("unit_code")[list(FIGURES)].sum().astype("int64")


def test_1_the_ten_communes_with_the_lowest_on_time_rate_with_their_district(analyst, truth):
    query, _ = analyst
    answer = query(f"""
        SELECT b.unit_code, b.unit_name, u.district_name,
               CAST(b.resolved_early + b.resolved_on_time AS DOUBLE PRECISION) / b.resolved_total AS on_time_rate
        FROM publish.bieu06_by_unit b
        JOIN publish.units u ON u.unit_code = b.unit_code AND u.valid_from <= b.period_end AND b.period_end <= u.valid_to
        WHERE b.period_label = '{BEFORE}' AND b.unit_level = 'commune' AND b.resolved_total > 0
        ORDER BY on_time_rate, b.unit_code LIMIT 10""")
    expected = _expected_units(truth, query, BEFORE)
    communes = query(f"SELECT unit_code FROM publish.bieu06_by_unit WHERE period_label = '{BEFORE}' "
                     "AND unit_level = 'commune'")["unit_code"]
    expected = expected[expected.index.isin(communes) & (expected["resolved_total"] > 0)]
    rate = (expected["resolved_early"] + expected["resolved_on_time"]) / expected["resolved_total"]
    lowest = rate.reset_index().sort_values([0, "unit_code"]).head(10)
    assert answer["unit_code"].tolist() == lowest["unit_code"].tolist()
    assert answer["on_time_rate"].round(9).tolist() == lowest[0].round(9).tolist()
    assert answer["district_name"].notna().all() and answer["district_name"].str.contains("Huyện|Thành phố|Thị xã").all()


def test_2_the_provinces_figures_one_row_per_quarter(analyst, truth):
    query, _ = analyst
    answer = query("SELECT period_label, received_total, resolved_total, pending_total, pending_overdue "
                   "FROM publish.bieu06_by_province ORDER BY period_label").set_index("period_label")
    assert answer.index.tolist() == list(QUARTERS)
    for quarter in QUARTERS:
        expected = _expected_units(truth, query, quarter).sum()
        assert answer.loc[quarter].astype("int64").to_dict() == {
            f: int(expected[f]) for f in ("received_total", "resolved_total", "pending_total", "pending_overdue")}
    assert str(answer["received_total"].dtype) == "int64"  # 64-bit counts, not decimals


def test_3_a_new_communes_series_across_the_reform_its_predecessors_before(analyst, truth):
    query, _ = analyst
    unit = query("""
        SELECT o.unit_code FROM publish.bieu06_old_units_on_new_v1 o
        JOIN publish.bieu06_old_units_on_new_v1 a ON a.unit_code = o.unit_code AND a.figures_of = 'unit'
        WHERE o.conversion_status = 'whole' AND o.old_units > 1 AND o.period_end < DATE '2025-07-01'
        ORDER BY o.received_total DESC, o.unit_code LIMIT 1""")["unit_code"][0]
    series = query(f"""
        SELECT unit_code, unit_name, old_codes, period_start, figures_of, received_total, carried_over,
               resolved_total, pending_total
        FROM publish.bieu06_old_units_on_new_v1 WHERE unit_code = '{unit}' ORDER BY period_start""")
    assert series["figures_of"].tolist() == ["old_units", "unit"] and series["unit_name"].nunique() == 1
    old_codes = series["old_codes"][0].split(",")
    before = _expected_units(truth, query, BEFORE).loc[old_codes].sum()
    after = _expected_units(truth, query, AFTER).loc[unit]
    for row, expected in zip(series.itertuples(index=False), (before, after)):
        assert [int(getattr(row, f)) for f in ("received_total", "carried_over", "resolved_total", "pending_total")] \
            == [int(expected[f]) for f in ("received_total", "carried_over", "resolved_total", "pending_total")]


def test_4_which_units_were_withheld_and_why_and_whom_to_call_for_which_figure(analyst, small_sample):
    query, _ = analyst
    withheld = query(f"""
        SELECT s.unit_code, s.unit_name, s.quality_status, s.reason, count(c.unit_code) AS calls,
               max(c.figure_labels) AS figure, max(c.location) AS location, min(c.contact) AS contact
        FROM publish.unit_status s
        LEFT JOIN publish.callback c ON c.unit_code = s.unit_code AND c.period_label = s.period_label
        WHERE s.period_label = '{BEFORE}' AND NOT s.published
        GROUP BY s.unit_code, s.unit_name, s.quality_status, s.reason ORDER BY s.unit_code""")
    defects = pd.read_csv(small_sample / "ground_truth" / "defects.csv", dtype=str)
    assert len(withheld) > 0 and withheld["unit_name"].notna().all() and withheld["reason"].notna().all()
    seeded = set(defects.loc[defects["period"] == BEFORE, "unit_code"]) if "period" in defects else set(defects["unit_code"])
    assert set(withheld.loc[withheld["quality_status"] == "critical", "unit_code"]) <= seeded
    critical = withheld[withheld["quality_status"] == "critical"]
    assert (critical["calls"] > 0).all() and critical["contact"].str.contains("UBND|Bộ phận").all()
    typed = critical[critical["location"].fillna("").str.contains("Bieu06_")]
    assert len(typed) and typed["figure"].str.contains(r"\(\d+\)").all()  # the form's label and column number
    # a flag says which earlier quarters it was checked against: loaded in another order, it may differ
    seen = query(f"SELECT DISTINCT history_seen FROM publish.unit_status WHERE period_label = '{AFTER}'")
    assert seen["history_seen"].tolist() == [BEFORE]


def test_5_the_departments_decision_766_indicators_with_their_denominators(analyst, truth):
    query, _ = analyst
    answer = query(f"""
        SELECT i.unit_code, i.numerator, i.denominator, i.denominator_name, i.value
        FROM publish.indicators_766 i JOIN publish.bieu06_by_unit b
          ON b.unit_code = i.unit_code AND b.period_start = i.period_start AND b.period_end = i.period_end
        WHERE b.period_label = '{BEFORE}' AND i.unit_level = 'department' AND i.indicator = 'on_time_rate'
        ORDER BY i.unit_code""").set_index("unit_code")
    expected = _expected_units(truth, query, BEFORE).loc[answer.index]
    assert answer["numerator"].tolist() == (expected["resolved_early"] + expected["resolved_on_time"]
                                            + expected["pending_within_due"]).tolist()
    assert answer["denominator"].tolist() == (expected["resolved_total"] + expected["pending_total"]).tolist()
    assert answer["denominator_name"].str.len().gt(0).all() and len(answer) > 5
    province = query(f"SELECT i.indicator, i.denominator_name FROM publish.indicators_766 i JOIN publish.bieu06_by_province p "
                     f"ON p.period_start = i.period_start AND p.period_end = i.period_end "
                     f"WHERE p.period_label = '{BEFORE}' AND i.unit_level = 'province'").set_index("indicator")
    assert "có dữ liệu từng hồ sơ" in province.loc["online_payment_share", "denominator_name"]  # coverage beside it


def test_6_what_changed_between_two_vintages_and_why(analyst):
    query, _ = analyst
    vintages = query("SELECT p.period_label, v.vintage, v.reason FROM publish.vintages v "
                     "JOIN publish.bieu06_by_province p USING (period_start, period_end) ORDER BY period_label")
    assert vintages["reason"].str.startswith("first publication").all()
    changes = query("SELECT figure, change, reason FROM publish.bieu06_revisions_v1")
    assert changes.empty  # one vintage per quarter: nothing revised (tests/test_warehouse.py revises one)


def test_7_one_districts_figures_by_field_as_the_official_workbook_lays_them_out(analyst, truth):
    query, _ = analyst
    district = query(f"SELECT district_code FROM publish.bieu06_by_district_territory WHERE period_label = '{BEFORE}' "
                     "ORDER BY received_total DESC LIMIT 1")["district_code"][0]
    answer = query(f"""
        SELECT f.field_code, f.field_name, {', '.join(f'sum(f.{x}) AS {x}' for x in FIGURES)}
        FROM publish.bieu06_by_unit_field f
        JOIN publish.units u ON u.unit_code = f.unit_code AND u.valid_from <= f.period_end AND f.period_end <= u.valid_to
        WHERE f.period_label = '{BEFORE}' AND (u.district_code = '{district}' OR f.unit_code = '{district}')
        GROUP BY f.field_code, f.field_name ORDER BY f.field_code""").set_index("field_code")
    members = query(f"SELECT unit_code FROM publish.units WHERE district_code = '{district}' OR unit_code = '{district}'")
    published = query(f"SELECT unit_code, source_id FROM publish.bieu06_by_unit WHERE period_label = '{BEFORE}'")
    rows = truth[BEFORE].merge(published, on=["unit_code", "source_id"])
    expected = rows[rows["unit_code"].isin(members["unit_code"])].groupby("field_code")[list(FIGURES)].sum()
    expected = expected[expected.sum(axis=1) > 0]
    answer = answer[answer[list(FIGURES)].sum(axis=1) > 0]
    assert answer.index.tolist() == expected.index.tolist()
    assert answer[list(FIGURES)].astype("int64").equals(expected.astype("int64"))
    assert answer["field_name"].notna().all()


def test_8_the_workbooks_total_equals_the_unit_tables_sum(analyst, truth):
    query, _ = analyst
    answer = query("""
        SELECT p.period_label, p.received_total AS province, sum(u.received_total) AS units,
               p.resolved_total AS province_resolved, sum(u.resolved_total) AS units_resolved
        FROM publish.bieu06_by_province p
        JOIN publish.bieu06_by_unit u ON u.period_start = p.period_start AND u.period_end = p.period_end
        GROUP BY p.period_label, p.received_total, p.resolved_total ORDER BY p.period_label""")
    assert (answer["province"] == answer["units"]).all() and (answer["province_resolved"] == answer["units_resolved"]).all()
    assert answer["province"].tolist() == [int(_expected_units(truth, query, q)["received_total"].sum())
                                           for q in QUARTERS]
