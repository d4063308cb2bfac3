"""Every validation check with a passing and a failing case."""
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tthc.config import load_settings
from tthc.model import DOSSIER_SCHEMA
from tthc.form import FIGURES
from tthc.checks import CHECKS
from validations.bieu06_rows import RollupGroup, bieu06_suite, prepare_rows, rollup_findings, row_findings, \
    with_continuity, with_crosscheck
from validations.dossier_records import RECORD_CHECKS, dossier_records_suite, record_counts, record_findings
from validations.gx import GxSession
from validations.unit_quarters import unit_findings, unit_quarters, unit_quarters_suite

SETTINGS = load_settings()
PERIOD = SETTINGS.period("2025-Q2")
GOOD = {"received_total": 120, "received_online": 60, "received_direct_postal": 50, "carried_over": 10,
        "resolved_total": 100, "resolved_early": 60, "resolved_on_time": 30, "resolved_late": 10,
        "pending_total": 15, "pending_within_due": 10, "pending_overdue": 5, "returned_withdrawn": 5}


@pytest.fixture(scope="module")
def session():
    return GxSession()


def row(name, unit="01411", field="HT", **figures):
    return {"case": name, "unit_code": unit, "field_code": field, "period_start": PERIOD.start, "period_end": PERIOD.end,
            "source_id": "commune_spreadsheets", "basis": "self_reported", "landed_file": "Bieu06.xlsx", **GOOD, **figures}


CASES = [
    row("good"),
    row("no_unit", unit=None),
    row("negative", returned_withdrawn=-5, received_total=110, received_direct_postal=40),
    row("wrong_period") | {"period_start": date(2025, 4, 15)},
    row("unit_of_other_system", unit="01279") | {"period_start": date(2025, 7, 1), "period_end": date(2025, 9, 30)},
    row("unknown_unit", unit="99999"),
    row("unknown_field", field="XX"),
    row("received_breaks", received_total=1200),
    row("resolved_breaks", resolved_total=1000, received_total=1020, received_direct_postal=950),
    row("pending_breaks", pending_overdue=50, received_total=165, received_direct_postal=95),
    row("balance_breaks", returned_withdrawn=15),
    row("unknown_parts_bound", received_total=50, received_online=None),
    row("unknown_parts_hold", received_online=None),
    row("nothing_to_check", resolved_total=None, pending_total=None),
    row("withdrawn_unknown", returned_withdrawn=None),
    row("empty", **{f: None for f in FIGURES}),
]


def failing(session, frame, suite):
    return {check: set(frame.iloc[ids]["case"]) for check, _, _, ids in session.validate(frame, suite)}


def test_bieu06_row_checks_pass_and_fail(session):
    frame = prepare_rows(pd.DataFrame(CASES), units_in_force=["01411", "01279"], field_codes=["HT"],
                         convention="calendar_quarter")
    frame.loc[frame["case"] == "unit_of_other_system", "unit_in_force"] = False  # 01279 is an old commune
    found = failing(session, frame, bieu06_suite())
    assert found["schema.key_present"] == {"no_unit"}
    assert found["figures.non_negative"] == {"negative"}
    assert found["period.convention"] == {"wrong_period"}
    assert found["unit.known"] == {"no_unit", "unknown_unit", "unit_of_other_system"}
    assert found["field.known"] == {"unknown_field"}
    assert found["identity.received"] == {"received_breaks", "unknown_parts_bound"}
    assert found["identity.resolved"] == {"resolved_breaks"}
    assert found["identity.pending"] == {"pending_breaks"}
    assert "balance_breaks" in found["identity.balance"] and "good" not in found["identity.balance"]
    assert found["identity.unchecked"] == {"nothing_to_check"}
    assert found["identity.balance_approximate"] == {"withdrawn_unknown"}
    assert found["completeness.empty_row"] == {"empty"}
    assert "good" not in set().union(*found.values())
    assert "unknown_parts_hold" not in set().union(*found.values())


def test_period_convention_on_its_own_follows_the_province(session):
    rows = pd.DataFrame([row("calendar"), row("decree") | {"period_start": date(2025, 3, 15), "period_end": date(2025, 6, 14)}])
    frame = prepare_rows(rows, units_in_force=["01411"], field_codes=["HT"], convention="calendar_quarter")
    assert frame["period_ok"].tolist() == [True, False]
    frame = prepare_rows(rows, units_in_force=["01411"], field_codes=["HT"], convention="decree_09_2019")
    assert frame["period_ok"].tolist() == [False, True]


def test_identity_findings_say_which_figure_and_suggest_a_fix(session):
    rows = pd.DataFrame([row("typo", resolved_total=1000), row("ambiguous", resolved_late=20)])
    frame = prepare_rows(rows, units_in_force=["01411"], field_codes=["HT"], period=PERIOD)
    findings = row_findings(frame, session.validate(frame, bieu06_suite()), PERIOD)
    resolved = {f.field_code and f.observed: f for f in findings if f.check_id == "identity.resolved"}
    typo, ambiguous = sorted(resolved.values(), key=lambda f: "1000" not in f.observed)
    assert typo.severity == "critical" and typo.suggested_fix == {"resolved_total": 100}
    assert "1.000 có lẽ là 100" in typo.message
    assert ambiguous.suggested_fix is None and "khả năng" in ambiguous.message


def test_continuity_against_the_previous_period(session):
    previous = SETTINGS.period("2025-Q1")
    earlier = pd.DataFrame([
        {"unit_code": "01411", "field_code": "HT", "source_id": "commune_spreadsheets", "pending_total": 10,
         "period_start": previous.start, "period_end": previous.end},
        {"unit_code": "01462", "field_code": "HT", "source_id": "commune_spreadsheets", "pending_total": 7,
         "period_start": previous.start, "period_end": previous.end}])
    rows = pd.DataFrame([row("same"), row("differs", unit="01462"), row("no_history", unit="01465"),
                         row("field_new_last_period_nothing_pending", field="CT")])
    frame = prepare_rows(with_continuity(rows, earlier, previous), units_in_force=["01411", "01462", "01465"],
                         field_codes=["HT", "CT"], period=PERIOD)
    found = failing(session, frame, bieu06_suite())
    assert found["continuity.carried_over"] == {"differs", "field_new_last_period_nothing_pending"}
    assert frame.loc[frame["case"] == "no_history", "carried_over_gap"].isna().all()


def test_self_reported_below_incomplete_records_is_flagged(session):
    units = pd.DataFrame({"unit_code": ["01411", "01462"], "level": ["commune", "commune"]})
    records = {**GOOD, "received_online": 90, "received_total": 150, "resolved_total": 100}
    rows = pd.DataFrame([
        row("reported_above_records"), row("reported_below_records", unit="01462"),
        row("records_411") | {"basis": "records", "source_id": "portal_dvc", "received_online": 40},
        row("records_462", unit="01462") | {"basis": "records", "source_id": "portal_dvc", **records}])
    frame = prepare_rows(rows, units_in_force=["01411", "01462"], field_codes=["HT"], period=PERIOD)
    frame = with_crosscheck(frame, units, PERIOD, bases={"commune_spreadsheets": "self_reported", "portal_dvc": "records"},
                            coverage={s.id: s.coverage for s in SETTINGS.sources},
                            tolerance_abs=float(SETTINGS.reconciliation.get("tolerance_abs", 0)),
                            tolerance_rel=float(SETTINGS.reconciliation.get("tolerance_rel", 0)))
    found = failing(session, frame, bieu06_suite())
    assert found["crosscheck.records_vs_reported"] == {"reported_below_records"}
    finding = [f for f in row_findings(frame, session.validate(frame, bieu06_suite()), PERIOD)
               if f.check_id == "crosscheck.records_vs_reported"][0]
    assert finding.columns == ["received_total", "received_online"]


def test_total_rows_and_parent_units_roll_up():
    total = pd.Series({**GOOD, "unit_code": "01411", "field_code": "", "source_id": "f"})
    parts = pd.DataFrame([GOOD, {f: 0 for f in FIGURES}])
    good = RollupGroup(pd.Series({**total, "received_total": 120}), parts, True, "rollup.total_row")
    bad = RollupGroup(pd.Series({**total, "received_online": 61}), parts, True, "rollup.total_row")
    partial_ok = RollupGroup(pd.Series({**total, "received_total": 500}), parts, False, "rollup.units")
    partial_bad = RollupGroup(pd.Series({**total, "received_total": 100}), parts, False, "rollup.units")
    findings = rollup_findings([good, bad, partial_ok, partial_bad], PERIOD)
    assert [(f.check_id, f.columns[:1]) for f in findings] == [
        ("rollup.total_row", ["received_online"]), ("rollup.units", ["received_total"])]


def dossier(source, ident, unit, **values):
    base = {"source_id": source, "dossier_id": ident, "procedure_code": "1.000349", "field_code": "HT", "unit_code": unit,
            "channel": "online", "received_at": datetime(2025, 4, 2, 9), "due_at": datetime(2025, 4, 10, 17),
            "finished_at": datetime(2025, 4, 9, 10), "returned_at": None, "status": 10, "fee_amount": 0,
            "paid_online": False, "results_digitised": True, "updated_at": datetime(2025, 4, 9, 10)}
    return {**base, **values}


def test_record_level_checks_in_sql(tmp_path, session):
    records = [
        dossier("portal_dvc", "G1", "good"), dossier("portal_dvc", "G2", "good", status=4, finished_at=None),
        dossier("portal_dvc", "A", "due", due_at=datetime(2025, 4, 1)),
        dossier("portal_dvc", "B", "finished", finished_at=datetime(2025, 4, 1)),
        dossier("portal_dvc", "C", "status", status=4),
        dossier("portal_dvc", "D", "after", received_at=datetime(2025, 7, 1, 8), due_at=datetime(2025, 7, 9),
                finished_at=datetime(2025, 7, 2)),
        dossier("portal_dvc", "E", "field", field_code="ZZ"),
        dossier("portal_dvc", "F", "procedure", procedure_code="abc"),
        dossier("portal_dvc", "H", "across"), dossier("agency_db", "H", "across"),
    ]
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=DOSSIER_SCHEMA), path)
    several_units = tmp_path / "ids_under_several_units.parquet"  # as canonicalize finds them in the landing
    pq.write_table(pa.table({"source_id": ["portal_dvc"], "dossier_id": ["W"]}), several_units)
    pq.write_table(pa.Table.from_pylist(records + [dossier("portal_dvc", "W", "within")], schema=DOSSIER_SCHEMA), path)
    counts = record_counts(path, PERIOD, ["HT"], several_units)
    counts["row_id"] = range(len(counts))
    failed = session.validate(counts, dossier_records_suite())
    found = {check: set(counts.iloc[ids]["unit_code"]) for check, _, _, ids in failed}
    assert found == {
        "records.due_before_received": {"due"}, "records.finished_before_received": {"finished"},
        "records.finished_status": {"status"}, "records.date_after_period_end": {"after"},
        "records.unknown_field": {"field"}, "records.unknown_procedure": {"procedure"},
        "records.duplicate_within_source": {"within"}, "records.duplicate_across_sources": {"across"},
    }
    assert set(found) == set(RECORD_CHECKS)
    findings = record_findings(counts, failed, PERIOD)
    assert all(f.severity == "warning" and f.unit_code != "good" for f in findings)
    assert any("H" in f.message for f in findings if f.check_id == "records.duplicate_across_sources")


def test_the_finished_status_finding_says_what_the_figures_did_with_each_dossier(tmp_path, session):
    """A finished dossier without a finish date is counted on its hand-back date, or left out of
    every figure when it has none (the province's rule); one with a date but an open status stays pending."""
    records = [dossier("portal_dvc", "R1", "u", finished_at=None, returned_at=datetime(2025, 4, 11, 9)),
               dossier("portal_dvc", "N1", "u", finished_at=None), dossier("portal_dvc", "N2", "u", finished_at=None),
               dossier("portal_dvc", "O1", "u", status=4)]
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=DOSSIER_SCHEMA), path)
    counts = record_counts(path, PERIOD, ["HT"])
    counts["row_id"] = range(len(counts))
    failed = session.validate(counts, dossier_records_suite())
    [province] = [f.message for f in record_findings(counts, failed, PERIOD) if f.check_id == "records.finished_status"]
    assert "4 trên 4 hồ sơ" in province
    assert ("3 hồ sơ trạng thái đã xong nhưng không có ngày kết thúc: 1 tính là kết thúc vào ngày trả kết quả, "
            "2 không được tính vào cột nào của biểu") in province
    assert "1 hồ sơ có ngày kết thúc mà trạng thái chưa xong: vẫn tính là đang giải quyết" in province
    [tandan] = [f.message for f in record_findings(counts, failed, PERIOD, "pending")
                if f.check_id == "records.finished_status"]
    assert "3 hồ sơ trạng thái đã xong nhưng không có ngày kết thúc: vẫn tính là đang giải quyết" in tandan


def test_records_under_no_unit_in_force_are_one_critical_finding_per_source_and_code(tmp_path, session):
    """An unresolved vendor unit id lands as the unit code: counted per source and raw code."""
    records = [dossier("portal_dvc", "G1", "01279"), dossier("portal_dvc", "V1", "DV-17"),
               dossier("portal_dvc", "V2", "DV-17"), dossier("agency_db", "V3", "DV-17"),
               dossier("agency_db", "G2", "040")]  # a district: no unit in force after the reform
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=DOSSIER_SCHEMA), path)
    counts = record_counts(path, SETTINGS.period("2025-Q3"), ["HT"], units_in_force=["01279"])
    counts["row_id"] = range(len(counts))
    findings = record_findings(counts, session.validate(counts, dossier_records_suite()), SETTINGS.period("2025-Q3"))
    unknown = sorted((f.source_id, f.unit_code, f.observed, f.severity) for f in findings
                     if f.check_id == "records.unit_unknown")
    assert unknown == [("agency_db", "040", "1", "critical"), ("agency_db", "DV-17", "1", "critical"),
                       ("portal_dvc", "DV-17", "2", "critical")]
    message = next(f.message for f in findings if f.source_id == "portal_dvc" and f.unit_code == "DV-17")
    assert message.startswith("Nguồn portal_dvc: 2 hồ sơ ghi mã đơn vị DV-17") and "V1, V2" in message


def test_plausibility_and_completeness_per_unit(session):
    units = pd.DataFrame({"unit_code": [f"u{i}" for i in range(12)], "level": ["commune"] * 12})
    quarters = [SETTINGS.period(f"2024-Q{q}") for q in (1, 2, 3, 4)] + [SETTINGS.period("2025-Q1")]
    earlier = pd.DataFrame([{"source_id": "s", "unit_code": u, "period_end": p.end, "received_total": 100 + i,
                             "resolved_total": 90 + i} for i, p in enumerate(quarters) for u in units["unit_code"]])
    current = []
    for i, unit in enumerate(units["unit_code"]):
        figures = {**GOOD, "received_total": 104, "resolved_total": 94, "resolved_early": 50 + i % 5,
                   "resolved_on_time": 34, "resolved_late": 10 - i % 5}
        if unit == "u0":
            figures |= {"received_total": 1040}
        if unit == "u1":
            figures |= {"resolved_early": 64, "resolved_on_time": 30, "resolved_late": 0, "pending_overdue": 0}
        if unit == "u2":
            figures |= {"resolved_early": 10, "resolved_on_time": 4, "resolved_late": 80}
        if unit == "u3":
            figures = {f: 0 for f in FIGURES}
        current.append({**figures, "source_id": "s", "unit_code": unit, "field_code": "HT"})
    frame = unit_quarters(pd.DataFrame(current), earlier, units, PERIOD)
    failed = session.validate(frame, unit_quarters_suite())
    found = {check: set(frame.iloc[ids]["unit_code"]) for check, _, _, ids in failed}
    assert found["plausibility.history"] == {"u0", "u3"}
    assert found["plausibility.on_time_all"] == {"u1"}
    assert "u2" in found["plausibility.peers"] and "u5" not in found["plausibility.peers"]
    assert found["completeness.no_dossiers"] == {"u3"}
    findings = unit_findings(frame, failed, PERIOD)
    assert {f.severity for f in findings if f.check_id == "plausibility.history"} == {"warning"}


def test_every_check_has_a_severity_and_a_vietnamese_title():
    for check in CHECKS.values():
        assert check.severity in ("critical", "warning", "info") and check.title
    assert sum(c.severity == "critical" for c in CHECKS.values()) >= 8


def test_every_suite_check_is_registered_and_has_a_message():
    from validations.bieu06_rows import ROW_MESSAGES
    from validations.dossier_records import RECORD_MESSAGES
    from validations.gx import suite_checks
    from validations.reconciled_figures import reconciled_figures_suite
    from validations.unit_quarters import UNIT_MESSAGES

    for suite, messages in ((bieu06_suite(unique_keys=True), ROW_MESSAGES), (reconciled_figures_suite(), ROW_MESSAGES),
                            (dossier_records_suite(), RECORD_MESSAGES), (unit_quarters_suite(), UNIT_MESSAGES)):
        assert suite_checks(suite) <= set(CHECKS) and suite_checks(suite) <= set(messages), suite.name
    for messages in (ROW_MESSAGES, RECORD_MESSAGES, UNIT_MESSAGES):
        assert set(messages) <= set(CHECKS)
