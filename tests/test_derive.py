"""Derivation of Biểu 06 figures from records, against figures computed by hand."""
from datetime import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tthc.model import DOSSIER_SCHEMA

from tthc.form import SUM_IDENTITIES
from tthc.periods import quarter
from transforms.derive import derive_figures

Q2 = quarter("2024-Q2", "calendar_quarter")  # 1 Apr – 30 Jun 2024


def dossier(i, received, due, finished=None, status=4, channel="in_person", unit="01273", field="HT"):
    return {"source_id": "s", "dossier_id": f"D{i}", "procedure_code": "P", "field_code": field,
            "unit_code": unit, "channel": channel, "received_at": received, "due_at": due,
            "finished_at": finished, "returned_at": None, "status": status, "fee_amount": 0,
            "paid_online": False, "results_digitised": False, "updated_at": None}


@pytest.fixture
def figures(tmp_path):
    rows = [
        dossier(1, dt(2024, 3, 20), dt(2024, 4, 5), dt(2024, 4, 5, 16), 10),  # carried, resolved on the due day
        dossier(2, dt(2024, 3, 25), dt(2024, 4, 2), None, 4),  # carried, pending overdue
        dossier(3, dt(2024, 4, 1, 8), dt(2024, 4, 10), dt(2024, 4, 8), 9, "online"),  # early
        dossier(4, dt(2024, 5, 2), dt(2024, 5, 10), dt(2024, 5, 13), 10, "postal"),  # late
        dossier(5, dt(2024, 6, 28), dt(2024, 7, 5), None, 5, "online"),  # pending within due
        dossier(6, dt(2024, 6, 30, 23, 59), dt(2024, 6, 30, 23, 59), None, 2),  # due on the last day: overdue
        dossier(7, dt(2024, 5, 5), dt(2024, 5, 20), dt(2024, 5, 6), 7),  # withdrawn
        dossier(8, dt(2024, 5, 5), dt(2024, 5, 20), dt(2024, 5, 6), 3),  # refused at intake: not counted
        dossier(9, dt(2024, 2, 1), dt(2024, 2, 10), dt(2024, 3, 1), 10),  # finished before the period
        dossier(10, dt(2024, 7, 1), dt(2024, 7, 10), None, 4),  # received after the period
        dossier(11, dt(2024, 3, 1), dt(2024, 3, 10), dt(2024, 7, 2), 10),  # carried, still pending at the end
        dossier(12, dt(2024, 4, 3), dt(2024, 4, 5), dt(2024, 4, 4), 9, unit="01279"),
    ]
    path = tmp_path / "dossiers.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DOSSIER_SCHEMA), path)
    out = tmp_path / "derived.parquet"
    derive_figures(path, Q2, out)
    return {(r["unit_code"], r["field_code"]): r for r in pq.read_table(out).to_pylist()}


def test_figures_by_hand(figures):
    row = figures[("01273", "HT")]
    expected = {
        "received_online": 2, "received_direct_postal": 3, "carried_over": 3, "received_total": 8,
        "resolved_early": 1, "resolved_on_time": 1, "resolved_late": 1, "resolved_total": 3,
        "pending_within_due": 1, "pending_overdue": 3, "pending_total": 4, "returned_withdrawn": 1,
    }
    assert {k: row[k] for k in expected} == expected
    assert (row["basis"], str(row["period_start"]), str(row["period_end"])) == ("records", "2024-04-01", "2024-06-30")


def test_every_identity_holds_for_derived_rows(figures):
    for row in figures.values():
        for total, parts in SUM_IDENTITIES.items():
            assert row[total] == sum(row[p] for p in parts)
        assert row["received_total"] == row["resolved_total"] + row["pending_total"] + row["returned_withdrawn"]


def test_units_are_kept_apart(figures):
    assert figures[("01279", "HT")]["resolved_early"] == 1
    assert figures[("01279", "HT")]["received_total"] == 1
