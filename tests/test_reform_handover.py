"""Continuity across the reform of 1 July 2025, on the province's real units and official conversion:
the old units' pending at the end of 2025-Q2 is their successors' carried-over at the start of 2025-Q3."""
from datetime import date

import pandas as pd
import pytest

from tthc.config import load_settings
from tthc.units import checked_conversion, successors, units_for_province, units_in_force
from validations.reform_handover import handover_findings, successor_groups

REFORM = date(2025, 7, 1)


@pytest.fixture(scope="module")
def province():
    settings = load_settings()
    units = units_for_province(settings)
    units = units[units["level"] != "province"]
    before, after = units_in_force(units, date(2025, 6, 30)), units_in_force(units, REFORM)
    fields = ["HT", "XD"]  # XD: a field whose district dossiers go to Sở Xây dựng here
    groups = successor_groups(successors(checked_conversion(settings).table, units, REFORM), before, after,
                              {"XD": "000.00.07.H04"}, fields)
    names = {**{("old", u): n for u, n in zip(before["unit_code"], before["unit_name"])},
             **{("new", u): n for u, n in zip(after["unit_code"], after["unit_name"])}}
    return settings, before, after, groups, names


def _balanced(groups, before, after):
    """Every old unit has 3 pending of each field (departments 5); each group's successors carry them
    all over, the first successor of the group taking the whole remainder."""
    pending = [{"unit_code": u, "field_code": f, "pending_total": 5 if u.startswith("000") else 3}
               for u in before["unit_code"] for f in ("HT", "XD")]
    by_unit = {(p["unit_code"], p["field_code"]): p["pending_total"] for p in pending}
    carried = []
    for (field, _), members in groups.groupby(["field_code", "group"]):
        old = members.loc[members["side"] == "old", "unit_code"]
        new = members.loc[members["side"] == "new", "unit_code"].tolist()
        total = sum(by_unit.get((u, field), 0) for u in old)
        carried += [{"unit_code": u, "field_code": field, "carried_over": total if i == 0 else 0}
                    for i, u in enumerate(new)]
    return pd.DataFrame(pending), pd.DataFrame(carried)


def _findings(province, pending, carried):
    settings, before, after, groups, names = province
    q2, q3 = settings.period("2025-Q2"), settings.period("2025-Q3")
    return handover_findings(groups, pending, carried, set(before["unit_code"]), set(after["unit_code"]), names,
                             q2, q3, REFORM)


def test_successor_groups_follow_the_conversion(province):
    _, before, after, groups, _ = province
    ht = groups[groups["field_code"] == "HT"]
    group_of = {(s, u): g for s, u, g in zip(ht["side"], ht["unit_code"], ht["group"])}
    # Xã Phục Hòa (01648) took Tà Lùng, Đại Sơn, Hòa Thuận and (corrected) Mỹ Hưng whole
    assert group_of[("old", "01651")] == group_of[("new", "01648")] == group_of[("old", "01627")]
    assert group_of[("old", "000.00.01.H04")] == group_of[("new", "000.00.01.H04")]
    assert set(ht.loc[ht["side"] == "old", "unit_code"]) == set(before["unit_code"])
    assert set(ht.loc[ht["side"] == "new", "unit_code"]) == set(after["unit_code"])
    xd = groups[groups["field_code"] == "XD"]
    districts = set(before.loc[before["level"] == "district", "unit_code"])
    dept_group = set(xd.loc[xd["unit_code"] == "000.00.07.H04", "group"])
    assert set(xd.loc[xd["unit_code"].isin(districts), "group"]) == dept_group  # XD goes to Sở Xây dựng
    assert set(xd.loc[xd["group"].isin(dept_group), "unit_code"]) == districts | {"000.00.07.H04"}


def test_a_balanced_hand_over_has_no_finding(province):
    _, before, after, groups, _ = province
    assert _findings(province, *_balanced(groups, before, after)) == []


def test_a_lost_and_a_double_counted_hand_over_are_found_and_named(province):
    _, before, after, groups, _ = province
    pending, carried = _balanced(groups, before, after)
    lost = (carried["unit_code"] == "01648") & (carried["field_code"] == "HT")
    carried.loc[lost, "carried_over"] -= 2  # two dossiers of Phục Hòa's old communes never arrived
    double = (carried["unit_code"] == "01273") & (carried["field_code"] == "HT")
    carried.loc[double, "carried_over"] += 1  # one counted at Thục Phán although another successor has it
    found = _findings(province, pending, carried)
    assert [(f.check_id, f.severity, f.field_code) for f in found] == [("continuity.handover", "warning", "HT")] * 2
    successors = {f.message: f.location.split(" → ")[1].split(",") for f in found}
    by_unit = {unit: f for f in found for unit in successors[f.message]}
    assert int(by_unit["01648"].expected) - int(by_unit["01648"].observed) == 2
    assert int(by_unit["01273"].observed) - int(by_unit["01273"].expected) == 1
    by_unit = {unit: f.message for unit, f in by_unit.items()}
    assert "thiếu 2 hồ sơ: hồ sơ bị mất khi bàn giao" in by_unit["01648"]
    assert "Xã Mỹ Hưng (01651)" in by_unit["01648"] and "Xã Phục Hòa (01648)" in by_unit["01648"]
    assert "thừa 1 hồ sơ: hồ sơ bị tính hai lần" in by_unit["01273"]


def test_a_group_with_an_unpublished_member_is_unchecked_not_judged(province):
    settings, before, after, groups, names = province
    pending, carried = _balanced(groups, before, after)
    carried.loc[carried["unit_code"] == "01648", "carried_over"] = 0
    found = handover_findings(groups, pending, carried, set(before["unit_code"]) - {"01651"},
                              set(after["unit_code"]), names, settings.period("2025-Q2"),
                              settings.period("2025-Q3"), REFORM)
    assert [(f.check_id, f.severity) for f in found] == [("continuity.unchecked", "info")]
    assert "Xã Mỹ Hưng (01651, cũ)" in found[0].message


def test_without_the_correction_my_hung_has_no_successor_and_its_pending_is_lost(province, monkeypatch):
    settings, before, after, _, names = province
    monkeypatch.setenv("TTHC_CONVERSION_CORRECTIONS", "")
    uncorrected = load_settings()
    uncorrected.province_doc.pop("conversion_corrections")
    groups = successor_groups(successors(checked_conversion(uncorrected).table, units_for_province(uncorrected), REFORM),
                              before, after, {}, ["HT"])
    alone = groups[groups["group"] == groups.loc[groups["unit_code"] == "01651", "group"].iloc[0]]
    assert alone["unit_code"].tolist() == ["01651"]
    pending = pd.DataFrame([{"unit_code": "01651", "field_code": "HT", "pending_total": 4}])
    found = handover_findings(alone, pending, pd.DataFrame(columns=["unit_code", "field_code", "carried_over"]),
                              {"01651"}, set(), names, settings.period("2025-Q2"), settings.period("2025-Q3"), REFORM)
    assert len(found) == 1 and "thiếu 4 hồ sơ" in found[0].message and "không có đơn vị nào" in found[0].message


# ------------------------------------------------------------------ records across the reform

def _canonical(path, records):
    """A canonical dossiers file of `records` (dicts of some DOSSIER_SCHEMA columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tthc.model import KEYED_DOSSIER_SCHEMA

    columns = {f.name: [r.get(f.name) for r in records] for f in KEYED_DOSSIER_SCHEMA}
    pq.write_table(pa.table(columns, schema=KEYED_DOSSIER_SCHEMA), path)
    return path


def _record(dossier_id, unit, field="HT", source="portal_dvc", received=None, entered=None):
    from datetime import datetime

    return {"source_id": source, "dossier_id": dossier_id, "unit_code": unit, "field_code": field,
            "received_at": received or datetime(2025, 6, 20, 9), "entered_at": entered}


def test_records_under_old_codes_go_to_the_successor_of_their_field_and_old_copies_are_left_out(tmp_path):
    import pandas as pd

    from transforms.canonicalize import place_on_successors

    path = _canonical(tmp_path / "dossiers.parquet", [
        _record("A1", "01627"),                      # an old commune merged whole into 01648
        _record("A2", "040", field="HT"),            # a district, a field that went to its seat's commune
        _record("A3", "040", field="GD"),            # a district, a field given to Sở Giáo dục (another software)
        _record("A4", "040", field="CTH"),           # a district, a field given to Sở Công Thương (the portal's)
        _record("A5", "09999"),                      # a split commune without a chosen successor
        _record("A6", "01648"),                      # a unit in force
        _record("T1", "000.00.13.H04", field="GD", source="tandan_departments"),
    ])
    placed, unplaced = place_on_successors(
        path, {"01627": "01648", "040": "01273"},
        {("040", "GD"): "000.00.13.H04", ("040", "CTH"): "000.00.04.H04"},
        elsewhere={("portal_dvc", "000.00.13.H04")}, unplaceable={"09999"})
    assert placed == {("portal_dvc", "01627", "01648"): 1, ("portal_dvc", "040", "01273"): 1,
                      ("portal_dvc", "040", "000.00.13.H04"): 1, ("portal_dvc", "040", "000.00.04.H04"): 1}
    assert unplaced == {("portal_dvc", "09999"): 1}
    after = pd.read_parquet(path).set_index("dossier_id")["unit_code"].to_dict()
    assert after == {"A1": "01648", "A2": "01273", "A4": "000.00.04.H04", "A5": "09999", "A6": "01648",
                     "T1": "000.00.13.H04"}  # A3: the portal's copy of a dossier Tân Dân carries on


def test_before_the_reform_a_record_entered_at_the_hand_over_is_left_to_the_old_unit(tmp_path):
    from datetime import datetime

    import pandas as pd

    from transforms.canonicalize import leave_out_handed_over

    reform = datetime(2025, 7, 1)
    handed, later = datetime(2025, 7, 1, 7, 45), datetime(2025, 7, 3, 9)
    path = _canonical(tmp_path / "dossiers.parquet", [
        _record("T1", "000.00.13.H04", field="GD", source="tandan_departments", entered=handed),
        _record("T2", "000.00.13.H04", field="GD", source="tandan_departments", entered=datetime(2025, 6, 20, 9)),
        _record("T3", "000.00.13.H04", field="YT", source="tandan_departments", entered=later),  # not taken over
        _record("T4", "000.00.13.H04", field="GD", source="tandan_departments",
                received=datetime(2025, 7, 2, 9), entered=later),                               # received after
        _record("P1", "01648", entered=handed),                                                 # a new commune
        _record("P2", "040", field="GD"),                                                       # no entry moment
    ])
    left = leave_out_handed_over(path, reform, {("000.00.13.H04", "GD"), ("01648", "")})
    assert left == {("tandan_departments", "000.00.13.H04"): 1, ("portal_dvc", "01648"): 1}
    assert sorted(pd.read_parquet(path)["dossier_id"]) == ["P2", "T2", "T3", "T4"]


def test_the_reform_settings_are_checked(tmp_path):
    import yaml

    from tthc.config import ConfigError, Settings

    settings = load_settings()
    assert settings.district_fields_to_departments == {"GD": "000.00.13.H04", "CTH": "000.00.04.H04"}
    assert settings.split_records == {}
    for wrong in ({"district_fields_to_departments": ["GD"]},
                  {"district_fields_to_departments": {"GD": "000.00.99.H04"}},
                  {"district_fields_to_departments": {"ZZ": "000.00.13.H04"}},
                  {"split_records": {"01615": 1648}}):
        doc = {**settings.province_doc, "reform": wrong}
        province = tmp_path / "province.yaml"
        province.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        broken = Settings(province, settings.sources_file)
        with pytest.raises(ConfigError, match="reform"):
            _ = broken.split_records if "split_records" in wrong else broken.district_fields_to_departments


def test_a_reused_code_on_a_record_received_before_the_reform_is_the_old_communes(tmp_path):
    """Code 01700 is a new commune's since the reform while the old commune 01700 went into 01648: a record
    received before the reform under 01700 is the old commune's (the new one did not exist yet), unless
    the software that took it over entered it then under the new unit."""
    from datetime import datetime

    import pandas as pd

    from transforms.canonicalize import place_on_successors

    reform = datetime(2025, 7, 1)
    path = _canonical(tmp_path / "dossiers.parquet", [
        _record("K1", "01700", received=datetime(2025, 6, 10, 9)),                                  # kept old code
        _record("K2", "01700", received=datetime(2025, 7, 10, 9)),                                  # the new unit's
        _record("K3", "01700", received=datetime(2025, 6, 10, 9), entered=datetime(2025, 7, 1, 8)),  # rewritten
    ])
    placed, _ = place_on_successors(path, {}, {}, reused={"01700": "01648"}, reform=reform)
    assert placed == {("portal_dvc", "01700", "01648"): 1}
    after = pd.read_parquet(path).set_index("dossier_id")["unit_code"].to_dict()
    assert after == {"K1": "01648", "K2": "01700", "K3": "01700"}


def test_in_cao_bang_every_reused_code_keeps_its_old_commune():
    """Why the rule above never fires on the sample: each new commune's code was an old commune's that went
    into that same new commune (docs/reconciliation.md §11)."""
    settings = load_settings()
    units = units_for_province(settings)
    after = set(units_in_force(units, REFORM).query("level == 'commune'")["unit_code"])
    taken = successors(checked_conversion(settings).table, units, REFORM)
    reused = {old: new for old, new in taken.items() if old in after}
    assert len(reused) == len(after) == 56
    assert all(new == [old] for old, new in reused.items())
