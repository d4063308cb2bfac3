"""Each row of the side-by-side table in ../shared/vendors.md §3, with dossiers computed by hand
under the province's, Tân Dân's and OpenCPS's rule sets; the explanation of the differences,
and its table on both warehouses."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.support.databases import throwaway_database
from tthc.model import DOSSIER_SCHEMA
from tthc.periods import quarter
from tthc.rules import NOT_REPRODUCED, OPENCPS, PROVINCE, RULES, TANDAN, rule_set
from tthc.form import FACT_FIGURES as EXPLAINED_FIGURES
from transforms.explain import MOVE_COLUMNS, explain, figures_under

Q2 = quarter("2024-Q2", "calendar_quarter")  # 1 Apr – 30 Jun 2024
BEFORE, IN, LAST = dt(2024, 3, 20, 9), dt(2024, 4, 10, 9), dt(2024, 6, 30)


def dossier(i, received, due, finished=None, status=4, channel="in_person", returned=None, paused=None):
    return {"source_id": "s", "dossier_id": f"D{i:02d}", "procedure_code": "P", "field_code": "HT",
            "unit_code": "U", "channel": channel, "received_at": received, "due_at": due, "finished_at": finished,
            "returned_at": returned, "paused_at": paused, "status": status, "fee_amount": 0, "paid_online": False,
            "results_digitised": False, "updated_at": None}


def figures(tmp_path, rows, rules) -> dict:
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DOSSIER_SCHEMA), path)
    frame = figures_under(path, Q2, rules)
    if frame.empty:
        return {f: 0 for f in EXPLAINED_FIGURES}
    return {f: int(frame.at[0, f]) for f in EXPLAINED_FIGURES}


def only(counts: dict) -> dict:
    """The figures that are not 0."""
    return {f: v for f, v in counts.items() if v}


def test_received_total_is_the_sum_of_its_parts_and_a_missing_channel_is_direct(tmp_path):
    rows = [dossier(1, IN, dt(2024, 4, 20), channel=None), dossier(2, IN, dt(2024, 4, 20), channel="online"),
            dossier(3, BEFORE, dt(2024, 4, 20), channel="postal")]
    for rules in (PROVINCE, TANDAN, OPENCPS):
        got = figures(tmp_path, rows, rules)
        assert (got["received_total"], got["received_online"], got["received_direct_postal"], got["carried_over"]) \
            == (3, 1, 1, 1), rules.name
    assert "tandan_null_channel" in NOT_REPRODUCED


def test_carried_over_and_opencps_strict_bounds(tmp_path):
    at_start = dt(2024, 4, 1, 0, 0, 0)
    rows = [dossier(1, BEFORE, dt(2024, 4, 20)),  # carried
            dossier(2, BEFORE, dt(2024, 3, 25), dt(2024, 3, 28), 10),  # finished before: not counted
            dossier(3, at_start, dt(2024, 4, 20))]
    for rules in (PROVINCE, TANDAN, OPENCPS):
        got = figures(tmp_path, rows, rules)
        assert (got["carried_over"], got["received_direct_postal"]) == (1, 1), rules.name
    strict = figures(tmp_path, rows, replace(OPENCPS, bugs=("strict_bounds",)))
    assert (strict["carried_over"], strict["received_direct_postal"]) == (2, 0)


def test_withdrawn_dossiers(tmp_path):
    rows = [dossier(1, IN, dt(2024, 4, 20), dt(2024, 4, 12), 7)]
    assert only(figures(tmp_path, rows, PROVINCE)) == {"received_total": 1, "received_direct_postal": 1,
                                                        "returned_withdrawn": 1}
    assert only(figures(tmp_path, rows, TANDAN)) == {"received_total": 1, "received_direct_postal": 1,
                                                      "resolved_total": 1, "resolved_on_time": 1}
    assert only(figures(tmp_path, rows, OPENCPS)) == {"received_total": 1, "received_direct_postal": 1,
                                                       "returned_withdrawn": 1}
    for_ever = figures(tmp_path, rows, replace(OPENCPS, bugs=("cancelled_stay_pending",)))
    assert (for_ever["pending_total"], for_ever["pending_overdue"], for_ever["returned_withdrawn"]) == (1, 1, 0)


def test_stopped_or_refused_after_processing(tmp_path):
    rows = [dossier(1, IN, dt(2024, 4, 20, 10), dt(2024, 4, 25, 15), 8)]
    assert figures(tmp_path, rows, PROVINCE)["returned_withdrawn"] == 1
    opencps = figures(tmp_path, rows, OPENCPS)
    assert (opencps["resolved_total"], opencps["resolved_late"], opencps["returned_withdrawn"]) == (1, 1, 0)
    tandan = figures(tmp_path, rows, TANDAN)  # a pause for Tân Dân: pending within due whatever the dates
    assert (tandan["pending_total"], tandan["pending_within_due"], tandan["pending_paused"]) == (1, 1, 1)


@pytest.mark.parametrize("finished, due, day, timestamp, session", [
    (dt(2024, 5, 10, 16), dt(2024, 5, 10, 8), "on_time", "late", "late"),       # the due day, after the moment
    (dt(2024, 5, 10, 7, 30), dt(2024, 5, 10, 10), "on_time", "early", "on_time"),  # in the morning session
    (dt(2024, 5, 10, 6, 30), dt(2024, 5, 10, 10), "on_time", "early", "early"),    # before the session opens
    (dt(2024, 5, 10, 13, 10), dt(2024, 5, 10, 15), "on_time", "early", "on_time"),  # afternoon: from 13:00
    (dt(2024, 5, 10, 6, 30), dt(2024, 5, 10, 12), "on_time", "early", "on_time"),  # due at noon: session 00:00
    (dt(2024, 5, 9, 16), dt(2024, 5, 10, 8), "early", "early", "early"),
    (dt(2024, 5, 11, 8), dt(2024, 5, 10, 8), "late", "late", "late"),
])
def test_on_time_by_day_timestamp_or_half_day_session(tmp_path, finished, due, day, timestamp, session):
    rows = [dossier(1, IN, due, finished, 10)]
    for rules, expected in ((PROVINCE, day), (TANDAN, day), (replace(PROVINCE, on_time="timestamp"), timestamp),
                            (OPENCPS, session)):
        got = figures(tmp_path, rows, rules)
        assert got[f"resolved_{expected}"] == 1 == got["resolved_total"], (rules.name, rules.on_time)


def test_no_due_date(tmp_path):
    rows = [dossier(1, IN, None, dt(2024, 4, 12), 10), dossier(2, IN, None)]
    for rules, column in ((PROVINCE, "resolved_on_time"), (TANDAN, "resolved_on_time"), (OPENCPS, "resolved_early")):
        got = figures(tmp_path, rows, rules)
        assert (got[column], got["resolved_total"], got["pending_within_due"], got["pending_overdue"]) \
            == (1, 1, 1, 0), rules.name
    assert figures(tmp_path, rows, rule_set({"no_due_date": "late"}))["resolved_late"] == 1


def test_paused_dossiers(tmp_path):
    overdue = dt(2024, 5, 1)
    rows = [dossier(1, IN, overdue, status=5),  # waiting for documents, no pause date
            dossier(2, IN, overdue, status=6),  # waiting for fees
            dossier(3, IN, overdue, status=5, paused=dt(2024, 7, 5)),  # paused after the period's end
            dossier(4, IN, overdue, status=4)]
    province = figures(tmp_path, rows, PROVINCE)  # the clock stops: within due, and a figure of their own
    assert (province["pending_total"], province["pending_within_due"], province["pending_overdue"],
            province["pending_paused"]) == (4, 3, 1, 3)
    tandan = figures(tmp_path, rows, TANDAN)  # status 5 paused from NgayYeuCauBoSung; 6 whatever the date
    assert (tandan["pending_total"], tandan["pending_within_due"], tandan["pending_overdue"],
            tandan["pending_paused"]) == (4, 2, 2, 2)
    opencps = figures(tmp_path, rows, OPENCPS)  # waiting is not pending; paying by its due date
    assert (opencps["pending_total"], opencps["pending_within_due"], opencps["pending_overdue"],
            opencps["pending_paused"], opencps["received_total"]) == (2, 0, 2, 2, 4)
    by_due = figures(tmp_path, rows, rule_set({"paused": "by_due"}))
    assert (by_due["pending_within_due"], by_due["pending_overdue"]) == (0, 4)


def test_pending_due_on_the_last_day(tmp_path):
    rows = [dossier(1, IN, dt(LAST.year, LAST.month, LAST.day, 16))]
    assert figures(tmp_path, rows, PROVINCE)["pending_overdue"] == 1
    assert figures(tmp_path, rows, TANDAN)["pending_within_due"] == 1
    assert figures(tmp_path, rows, OPENCPS)["pending_overdue"] == 1


def test_finished_status_without_a_finish_date(tmp_path):
    rows = [dossier(1, IN, dt(2024, 4, 20), None, 10, returned=dt(2024, 4, 22, 9)),  # handed back: that ends it
            dossier(2, IN, dt(2024, 4, 20), None, 9)]  # no date at all
    assert only(figures(tmp_path, rows, PROVINCE)) == {"received_total": 1, "received_direct_postal": 1,
                                                        "resolved_total": 1, "resolved_late": 1}
    assert only(figures(tmp_path, rows, TANDAN)) == {}  # in no column
    assert only(figures(tmp_path, rows, OPENCPS)) == {"received_total": 2, "received_direct_postal": 2,
                                                       "pending_total": 2, "pending_overdue": 2}


def test_opencps_carries_over_a_dossier_released_before_and_handed_back_in_the_period(tmp_path):
    rows = [dossier(1, BEFORE, dt(2024, 3, 28), dt(2024, 3, 27), 10, returned=dt(2024, 4, 2))]
    assert only(figures(tmp_path, rows, PROVINCE)) == {}
    assert only(figures(tmp_path, rows, OPENCPS)) == {"received_total": 1, "carried_over": 1}


def test_rule_sets_from_configuration():
    assert rule_set(None) == PROVINCE and rule_set("tandan") == TANDAN
    custom = rule_set({"based_on": "opencps", "on_time": "day", "bugs": ["strict_bounds"]})
    assert (custom.on_time, custom.paused, custom.bugs) == ("day", "not_pending", ("strict_bounds",))
    for wrong in ("vendorx", {"on_time": "hour"}, {"bugs": ["made_up"]}, {"colour": "red"}, {"based_on": "x"}):
        with pytest.raises(ValueError):
            rule_set(wrong)
    assert PROVINCE.differences(PROVINCE) == [] and set(PROVINCE.differences(TANDAN)) <= set(RULES)


ALL_ROWS = [
    dossier(1, IN, None, dt(2024, 4, 12), 10), dossier(2, IN, dt(2024, 5, 1), status=5),
    dossier(3, IN, dt(2024, 4, 20), dt(2024, 4, 12), 7), dossier(4, IN, dt(2024, 6, 30, 16)),
    dossier(5, IN, dt(2024, 4, 20, 10), dt(2024, 4, 25, 15), 8), dossier(6, IN, dt(2024, 5, 10, 8), dt(2024, 5, 10, 16), 10),
    dossier(7, IN, dt(2024, 4, 20), None, 10, returned=dt(2024, 4, 22, 9)),
    dossier(8, BEFORE, dt(2024, 3, 28), dt(2024, 3, 27), 10, returned=dt(2024, 4, 2)),
    dossier(9, BEFORE, dt(2024, 5, 1), status=6, channel="online"),
]


@pytest.mark.parametrize("against", [TANDAN, OPENCPS])
def test_the_moves_add_up_to_every_difference(tmp_path, against):
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(ALL_ROWS, schema=DOSSIER_SCHEMA), path)
    moves = explain(path, Q2, PROVINCE, against)
    province, vendor = figures(tmp_path, ALL_ROWS, PROVINCE), figures(tmp_path, ALL_ROWS, against)
    net = (moves["dossiers_in"] - moves["dossiers_out"]).groupby(moves["figure"]).sum()
    for figure in EXPLAINED_FIGURES:
        assert net.get(figure, 0) == vendor[figure] - province[figure], figure
    assert set(moves["rule"]) <= set(PROVINCE.differences(against))
    assert (moves["province_value"] == moves["figure"].map(province)).all()
    assert (moves["against_value"] == moves["figure"].map(vendor)).all()
    withdrawn = moves[(moves["rule"] == "withdrawn") & (moves["figure"] == "resolved_on_time")]
    if against is TANDAN:
        assert withdrawn[["dossiers_in", "example_dossiers"]].values.tolist() == [[1, "D03"]]


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path):
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        with throwaway_database("postgresql") as url:
            yield url


def test_the_explanation_is_a_quality_table_on_both_warehouses(tmp_path, warehouse_url):
    from warehouse.db import engine_for, migrate
    from warehouse.load import load_period

    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(ALL_ROWS, schema=DOSSIER_SCHEMA), path)
    moves = pd.concat([explain(path, Q2, PROVINCE, against) for against in (TANDAN, OPENCPS)])
    units = pd.DataFrame([{"unit_code": "U", "unit_name": "Sở A", "level": "department", "parent_code": None,
                           "province_code": "04", "valid_from": date(1900, 1, 1), "valid_to": date(9999, 12, 31)}])
    with engine_for(warehouse_url) as engine:
        migrate(engine)
        for run in ("run-1", "run-2"):  # a rerun replaces the period's rows
            load_period(engine, Q2, run, units=units, tables={"quality.definition_moves": moves})
        with engine.connect() as conn:
            loaded = pd.read_sql(sa.text("SELECT * FROM quality.definition_moves ORDER BY against, figure, rule"), conn)
    assert set(loaded["run_id"]) == {"run-2"} and len(loaded) == len(moves)
    expected = moves.sort_values(["against", "figure", "rule"]).reset_index(drop=True)
    loaded["period_start"] = pd.to_datetime(loaded["period_start"]).dt.date
    loaded["period_end"] = pd.to_datetime(loaded["period_end"]).dt.date
    pd.testing.assert_frame_equal(loaded[MOVE_COLUMNS], expected[MOVE_COLUMNS], check_dtype=False)


def test_a_dossier_stopped_after_the_period_was_being_processed_at_its_end(tmp_path):
    rows = [dossier(1, IN, dt(2024, 5, 1), dt(2024, 7, 3), 8)]
    province = figures(tmp_path, rows, PROVINCE)
    assert (province["pending_overdue"], province["pending_paused"]) == (1, 0)
    tandan = figures(tmp_path, rows, TANDAN)  # 8 is a pause for Tân Dân whatever the dates
    assert (tandan["pending_within_due"], tandan["pending_paused"]) == (1, 1)
