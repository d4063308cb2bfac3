"""Which source wins for a unit, with hand-made candidates."""
from datetime import date

import pandas as pd
import pytest

from tthc.config import load_settings
from tthc.findings import Finding
from tthc.form import FIGURES
from extractors.registry import basis_of
from transforms.reconcile import reconcile


@pytest.fixture
def settings():
    return load_settings()


def bases(settings):
    return {s.id: basis_of(s) for s in settings.sources}


def rows(*specs):
    out = []
    for unit, source, basis, received in specs:
        row = {f: 0 for f in FIGURES}
        row.update(unit_code=unit, period_start=date(2024, 4, 1), period_end=date(2024, 6, 30), field_code="HT",
                   received_total=received, received_direct_postal=received, basis=basis, source_id=source,
                   landed_file=None)
        out.append(row)
    columns = ["unit_code", "period_start", "period_end", "field_code", *FIGURES, "basis", "source_id", "landed_file"]
    frame = pd.DataFrame(out, columns=columns)
    for f in FIGURES:
        frame[f] = frame[f].astype("Int64")
    return frame


def units(*specs):
    return pd.DataFrame([{"unit_code": c, "unit_name": c, "level": level} for c, level in specs])


def test_coverage_rules(settings):
    q2_2024, q3_2025 = settings.period("2024-Q2"), settings.period("2025-Q3")
    portal = settings.source("portal_dvc")
    assert portal.coverage("000.00.03.H04", "department", q2_2024) is True
    assert portal.coverage("000.00.08.H04", "department", q2_2024) is None  # the other vendor's
    assert portal.coverage("000.00.01.H04", "department", q2_2024) is None  # OpenCPS's
    assert settings.source("opencps_departments").coverage("000.00.01.H04", "department", q2_2024) is True
    assert portal.coverage("01279", "commune", q2_2024) is False
    assert portal.coverage("01279", "commune", q3_2025) is True
    assert portal.coverage("040", "district", q3_2025) is None


def test_spreadsheet_wins_over_incomplete_records_and_records_win_when_complete(settings):
    period = settings.period("2024-Q2")
    data = rows(("01279", "portal_dvc", "records", 7), ("01279", "commune_spreadsheets", "self_reported", 10),
                ("040", "portal_dvc", "records", 30))
    result, decided, findings = reconcile(data, units(("01279", "commune"), ("040", "district")), [], settings,
                                          period, {}, bases(settings))
    winners = dict(zip(result["unit_code"], result["source_id"]))
    assert winners == {"01279": "commune_spreadsheets", "040": "portal_dvc"}
    assert result.set_index("unit_code").loc["01279", "received_total"] == 10
    assert findings == []


def test_records_from_complete_coverage_win_after_the_reform(settings):
    period = settings.period("2025-Q3")
    data = rows(("01279", "portal_dvc", "records", 7), ("01279", "commune_spreadsheets", "self_reported", 10))
    result, _, _ = reconcile(data, units(("01279", "commune")), [], settings, period, {}, bases(settings))
    assert result["source_id"].tolist() == ["portal_dvc"] and result["received_total"].tolist() == [7]


def test_a_unit_with_nothing_is_missing_and_says_why(settings):
    period = settings.period("2025-Q3")
    _, decided, findings = reconcile(rows(), units(("01279", "commune")), [], settings, period,
                                     {"portal_dvc": "ConnectionError: refused", "commune_spreadsheets": "x"}, bases(settings))
    assert decided["quality_status"].tolist() == ["missing"]
    assert findings[0].check_id == "completeness.missing_report" and "refused" in findings[0].message


def test_partial_records_alone_are_published_with_a_warning(settings):
    period = settings.period("2024-Q2")
    result, decided, findings = reconcile(rows(("01279", "portal_dvc", "records", 7)), units(("01279", "commune")),
                                          [], settings, period, {}, bases(settings))
    assert decided["quality_status"].tolist() == ["warning"]
    assert [f.check_id for f in findings] == ["reconcile.incomplete_coverage"]


def test_a_critical_finding_on_the_winner_withholds_the_unit(settings):
    period = settings.period("2024-Q2")
    critical = Finding("identity.received", "critical", "x", unit_code="01279", source_id="commune_spreadsheets")
    _, decided, _ = reconcile(rows(("01279", "commune_spreadsheets", "self_reported", 10)),
                              units(("01279", "commune")), [critical], settings, period, {}, bases(settings))
    assert decided["quality_status"].tolist() == ["critical"]


def test_a_self_report_beyond_the_tolerance_is_a_finding_and_records_still_win(settings):
    # tolerance: max(2 dossiers, 2 %) of the records' figure
    period = settings.period("2025-Q3")
    data = rows(("01279", "portal_dvc", "records", 200), ("01279", "commune_spreadsheets", "self_reported", 204),
                ("01280", "portal_dvc", "records", 200), ("01280", "commune_spreadsheets", "self_reported", 205))
    result, decided, findings = reconcile(data, units(("01279", "commune"), ("01280", "commune")), [], settings,
                                          period, {}, bases(settings))
    assert result["received_total"].tolist() == [200, 200]
    assert decided["quality_status"].tolist() == ["ok", "ok"]
    (finding,) = findings
    assert (finding.check_id, finding.unit_code, finding.columns) == (
        "reconcile.sources_disagree", "01280", ["received_total", "received_direct_postal"])
    assert finding.observed == '{"received_total": 205, "received_direct_postal": 205}'


def _reconciled_rows(units, period):
    rows = []
    for unit in units:
        for field in ("HT", "CT"):
            rows.append({"unit_code": unit, "period_start": period.start, "period_end": period.end, "field_code": field,
                         "received_total": 10, "received_online": 3, "received_direct_postal": 5, "carried_over": 2,
                         "resolved_total": 6, "resolved_early": 3, "resolved_on_time": 2, "resolved_late": 1,
                         "pending_total": 4, "pending_within_due": 3, "pending_overdue": 1, "returned_withdrawn": 0,
                         "basis": "records", "source_id": "portal_dvc", "quality_status": "ok"})
    return pd.DataFrame(rows)


def test_the_audit_of_reconciled_figures_passes_clean_rows_and_stops_a_broken_contract(var):
    from runner.pipeline import make_context
    from validations.reconciled_figures import AuditFailed, audit_reconciled as audit

    ctx = make_context("2025-Q2")
    units = list(ctx.units_in_force.query("level == 'commune'")["unit_code"][:3])
    rows = _reconciled_rows(units, ctx.period)

    def audit_reconciled(reconciled):
        return audit(reconciled, period=ctx.period, units_in_force=ctx.units_in_force["unit_code"],
                     field_codes=[f["code"] for f in ctx.settings.fields], convention=ctx.settings.period_convention,
                     results_path=ctx.files.gx_results_reconciled)
    assert audit_reconciled(rows) == {"audited_rows": 6}
    assert ctx.files.gx_results_reconciled.exists()

    quarantined = rows.copy()
    quarantined.loc[0, "resolved_total"] = 60
    quarantined.loc[0:1, "quality_status"] = "critical"
    assert audit_reconciled(quarantined) == {"audited_rows": 4}

    broken = pd.concat([rows, rows.iloc[[2]]], ignore_index=True)
    broken.loc[4, "resolved_total"] = 60
    broken.loc[5, "unit_code"] = "99999"
    with pytest.raises(AuditFailed) as failure:
        audit_reconciled(broken)
    message = str(failure.value)
    assert f"schema.key_unique unit {units[1]} field HT" in message
    assert f"identity.resolved unit {units[2]} field HT" in message
    assert "unit.known unit 99999 field CT" in message


def test_a_covered_unit_without_records_is_withheld_while_its_source_has_unplaced_records(settings):
    """Records under a code that is no unit in force (an unresolved vendor id) belong to some
    unit: a unit the source covers completely and has none of is withheld, not published as 0."""
    from tthc.findings import finding

    period = settings.period("2024-Q2")
    data = rows(("000.00.03.H04", "portal_dvc", "records", 5), ("DV-0002", "portal_dvc", "records", 9))
    unplaced = finding("records.unit_unknown", "9 hồ sơ", period.start, period.end, source_id="portal_dvc",
                       unit_code="DV-0002", observed="9")
    the_units = units(("000.00.03.H04", "department"), ("000.00.04.H04", "department"), ("000.00.07.H04", "department"))
    result, decided, findings = reconcile(data, the_units, [unplaced], settings, period, {}, bases(settings))
    status = decided.set_index("unit_code")
    assert status.loc["000.00.03.H04", "quality_status"] == "ok"  # it has its records
    assert status.loc["000.00.04.H04", "quality_status"] == "critical"  # withheld: its records are probably DV-0002's
    assert "portal_dvc" in status.loc["000.00.04.H04", "reason"] and "9 hồ sơ" in status.loc["000.00.04.H04", "reason"]
    # the other vendor's department: its source has no unplaced records, a complete source with no rows is a 0
    assert status.loc["000.00.07.H04", "quality_status"] == "ok"
    withheld = [f for f in findings if f.check_id == "reconcile.unplaced_records"]
    assert [(f.unit_code, f.source_id, f.severity) for f in withheld] == [("000.00.04.H04", "portal_dvc", "critical")]
    assert set(result["unit_code"]) == {"000.00.03.H04"}

    # without the unplaced records the same unit is a published 0
    _, decided, _ = reconcile(data, the_units, [], settings, period, {}, bases(settings))
    assert set(decided["quality_status"]) == {"ok"}


def test_an_empty_records_source_wins_nothing(settings):
    """A source that landed no record at all (an empty export) is not the zeros of its units."""
    period = settings.period("2024-Q2")
    data = rows(("01279", "commune_spreadsheets", "self_reported", 10))
    the_units = units(("000.00.07.H04", "department"), ("01279", "commune"))
    _, decided, findings = reconcile(data, the_units, [], settings, period, {}, bases(settings),
                                     empty_sources=["agency_db_xd_tnmt", "portal_dvc"])
    status = decided.set_index("unit_code")
    assert status.loc["000.00.07.H04", "quality_status"] == "missing"
    assert status.loc["000.00.07.H04", "reason"] == "agency_db_xd_tnmt: không có bản ghi nào trong kỳ"
    assert status.loc["01279", "source_id"] == "commune_spreadsheets"  # the workbook still wins its commune
    assert [f.unit_code for f in findings if f.check_id == "completeness.missing_report"] == ["000.00.07.H04"]


def test_partial_records_never_stand_in_for_a_self_report_that_failed(settings):
    period = settings.period("2024-Q2")
    failed = {"commune_spreadsheets": "SourceUnavailable: commune_spreadsheets: … has no folder 2024-Q2"}
    result, decided, findings = reconcile(rows(("01279", "portal_dvc", "records", 7)), units(("01279", "commune")),
                                          [], settings, period, failed, bases(settings))
    assert result.empty and decided["quality_status"].tolist() == ["missing"]
    (missing,) = findings
    assert missing.check_id == "completeness.missing_report" and "has no folder 2024-Q2" in missing.message
    assert "chỉ có hồ sơ từ phần mềm một cửa chưa đầy đủ (portal_dvc)" in missing.message
    # no workbook from this commune in a folder that was read: partial records, flagged, as before
    _, decided, _ = reconcile(rows(("01279", "portal_dvc", "records", 7)), units(("01279", "commune")), [], settings,
                              period, {}, bases(settings), empty_sources=["commune_spreadsheets"])
    assert decided["quality_status"].tolist() == ["warning"]


def _portal_also_claiming(settings, unit):
    rule = settings.source("portal_dvc").spec["covers"][0]
    rule["exclude"] = [u for u in rule["exclude"] if u != unit]


def test_two_complete_sources_for_a_unit_the_one_with_its_records_wins_never_the_first_with_zeros(settings):
    period = settings.period("2024-Q2")
    _portal_also_claiming(settings, "000.00.07.H04")
    data = rows(("000.00.07.H04", "agency_db_xd_tnmt", "records", 12), ("000.00.03.H04", "portal_dvc", "records", 5))
    result, decided, findings = reconcile(data, units(("000.00.07.H04", "department")), [], settings, period, {},
                                          bases(settings))
    assert result["source_id"].tolist() == ["agency_db_xd_tnmt"] and result["received_total"].tolist() == [12]
    assert decided["quality_status"].tolist() == ["warning"]
    (overlap,) = findings
    assert overlap.check_id == "reconcile.overlapping_sources" and overlap.severity == "warning"
    assert "(portal_dvc, agency_db_xd_tnmt)" in overlap.message
    # both have records: withheld; neither has any and both landed: their common 0s, flagged
    both = rows(("000.00.07.H04", "agency_db_xd_tnmt", "records", 12), ("000.00.07.H04", "portal_dvc", "records", 3))
    _, decided, findings = reconcile(both, units(("000.00.07.H04", "department")), [], settings, period, {},
                                     bases(settings))
    assert decided["quality_status"].tolist() == ["critical"] and findings[0].severity == "critical"
    assert "(portal_dvc, agency_db_xd_tnmt)" in decided["reason"].iloc[0]
    _, decided, findings = reconcile(rows(), units(("000.00.07.H04", "department")), [], settings, period, {},
                                     bases(settings))
    assert decided["quality_status"].tolist() == ["warning"] and decided["source_id"].tolist() == ["portal_dvc"]
    assert "không nguồn nào có hồ sơ" in findings[0].message
