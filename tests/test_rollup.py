"""Roll-up commune → district → province with inter-level dossiers counted once, by hand."""
from datetime import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tthc.model import DOSSIER_SCHEMA, KEYED_DOSSIER_SCHEMA

from tthc.form import FIGURES
from tthc.periods import quarter
from transforms.rollup import rollup

Q2 = quarter("2024-Q2", "calendar_quarter")


def dossier(dossier_id, unit, received, finished=None, status=4, channel="in_person", updated=None):
    return {"source_id": "portal_dvc", "dossier_id": dossier_id, "procedure_code": "P", "field_code": "HT",
            "unit_code": unit, "channel": channel, "received_at": received, "due_at": dt(2024, 5, 30),
            "finished_at": finished, "returned_at": None, "status": status, "fee_amount": 0,
            "paid_online": False, "results_digitised": False, "updated_at": updated or received}


def test_inter_level_dossiers_are_counted_once_and_self_reports_added(tmp_path):
    rows = [
        # received online at the commune, passed to the district that resolved it: one dossier, two records
        dossier("X1", "01279", dt(2024, 4, 2), None, 4, "online"),
        dossier("X1", "040", dt(2024, 4, 2), dt(2024, 5, 2), 10, "online", updated=dt(2024, 5, 2)),
        dossier("X2", "040", dt(2024, 4, 10), None, 4),
        dossier("X3", "000.00.01.H04", dt(2024, 4, 11), dt(2024, 6, 1), 10),  # late: due 30/5
        dossier("X4", "01281", dt(2024, 4, 12)),  # a commune whose figures were withheld
    ]
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DOSSIER_SCHEMA), path)
    units = pd.DataFrame([
        {"unit_code": "040", "level": "district", "parent_code": "04"},
        {"unit_code": "01279", "level": "commune", "parent_code": "040"},
        {"unit_code": "01280", "level": "commune", "parent_code": "040"},
        {"unit_code": "01281", "level": "commune", "parent_code": "040"},
        {"unit_code": "000.00.01.H04", "level": "department", "parent_code": "04"},
        {"unit_code": "04", "level": "province", "parent_code": None},
    ])
    status = pd.DataFrame([
        {"unit_code": "040", "source_id": "portal_dvc", "basis": "records", "quality_status": "ok"},
        {"unit_code": "01279", "source_id": "portal_dvc", "basis": "records", "quality_status": "ok"},
        {"unit_code": "01280", "source_id": "commune_spreadsheets", "basis": "self_reported", "quality_status": "warning"},
        {"unit_code": "01281", "source_id": "portal_dvc", "basis": "records", "quality_status": "critical"},
        {"unit_code": "000.00.01.H04", "source_id": "portal_dvc", "basis": "records", "quality_status": "ok"},
    ])
    self_reported = {f: 0 for f in FIGURES} | {"received_total": 5, "received_direct_postal": 5,
                                               "pending_total": 5, "pending_within_due": 5}
    reconciled = pd.DataFrame([{"unit_code": "01280", "field_code": "HT", **self_reported}])
    result = rollup(path, status, reconciled, units, "04", Q2).set_index(["parent_level", "parent_code"])

    district = result.loc[("district", "040")]
    assert district[list(FIGURES)].to_dict() == {
        "received_total": 7, "received_online": 1, "received_direct_postal": 6, "carried_over": 0,
        "resolved_total": 1, "resolved_early": 1, "resolved_on_time": 0, "resolved_late": 0,
        "pending_total": 6, "pending_within_due": 5, "pending_overdue": 1, "returned_withdrawn": 0,  # X2 is past due
    }
    assert (district["units_included"], district["units_not_published"], district["duplicates_removed"]) == (3, 1, 1)

    province = result.loc[("province", "04")]
    assert (province["received_total"], province["resolved_total"], province["resolved_late"]) == (8, 2, 1)
    assert (province["units_included"], province["units_not_published"], province["duplicates_removed"]) == (4, 1, 1)


def test_canonical_dossiers_skip_the_repeat_search_with_the_same_figures(tmp_path):
    """A file that declares one record per dossier (canonicalize's) gives the figures the
    general path gives for the same records."""
    rows = [dossier("X1", "040", dt(2024, 4, 2), dt(2024, 5, 2), 10, "online"), dossier("X2", "040", dt(2024, 4, 10)),
            dossier("X3", "01279", dt(2024, 4, 11), dt(2024, 6, 1), 10), dossier("X4", "01279", dt(2024, 3, 1))]
    units = pd.DataFrame([{"unit_code": "040", "level": "district", "parent_code": "04"},
                          {"unit_code": "01279", "level": "commune", "parent_code": "040"}])
    status = pd.DataFrame([{"unit_code": u, "source_id": "portal_dvc", "basis": "records", "quality_status": "ok"}
                           for u in ("040", "01279")])
    results = []
    for schema in (DOSSIER_SCHEMA, KEYED_DOSSIER_SCHEMA):
        path = tmp_path / f"{len(results)}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        results.append(rollup(path, status, pd.DataFrame(columns=["unit_code", "field_code"]), units, "04", Q2))
    pd.testing.assert_frame_equal(results[0], results[1])
    assert results[1]["received_total"].tolist() == [4, 4] and (results[1]["duplicates_removed"] == 0).all()


def test_no_record_rows_rolls_up_the_self_reported_units_alone(tmp_path):
    """Only the commune workbooks landed: no dossier at all, the roll-up is their figures (it
    used to fail splitting the parents of an empty frame)."""
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=KEYED_DOSSIER_SCHEMA), path)
    units = pd.DataFrame([
        {"unit_code": "040", "level": "district", "parent_code": "04"},
        {"unit_code": "01280", "level": "commune", "parent_code": "040"},
        {"unit_code": "000.00.01.H04", "level": "department", "parent_code": "04"},
    ])
    status = pd.DataFrame([
        {"unit_code": "040", "source_id": None, "basis": None, "quality_status": "missing"},
        {"unit_code": "01280", "source_id": "commune_spreadsheets", "basis": "self_reported", "quality_status": "ok"},
        {"unit_code": "000.00.01.H04", "source_id": None, "basis": None, "quality_status": "missing"},
    ])
    reconciled = pd.DataFrame([{"unit_code": "01280", "field_code": "HT", **{f: 2 for f in FIGURES}}])
    result = rollup(path, status, reconciled, units, "04", Q2).set_index(["parent_level", "parent_code"])
    assert result.loc[("province", "04"), "received_total"] == 2
    assert (result.loc[("district", "040"), "units_included"], result.loc[("district", "040"),
                                                                           "units_not_published"]) == (1, 1)

    nothing = rollup(path, status.assign(quality_status="missing"), reconciled.iloc[0:0], units, "04", Q2)
    assert len(nothing) == 0 and list(nothing.columns)[:2] == ["parent_code", "parent_level"]
