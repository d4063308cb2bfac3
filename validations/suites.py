"""GX suites, one per data contract, defined in code and kept in git.

GX runs on frames that are already small: Biểu 06 rows (self-reported and record-derived),
per-unit aggregates of the dossier records (the record-level checks themselves run as SQL in
DuckDB, validations/records.py), per-unit quarter totals against history and peers, the
canonical CSV of `tthc validate`, and the reconciled figures about to be published. Each expectation carries its check id in `meta` and
the check's severity (tthc/checks.py); the columns it reads are computed beforehand
in validations/run.py, so that a finding can name the figures involved.
"""
from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

from tthc.form import BALANCE_IDENTITY, FIGURES, SUM_IDENTITIES
from tthc.checks import BALANCE_CHECK, CHECKS, IDENTITY_CHECKS  # noqa: E402
from validations.records import RECORD_CHECKS  # noqa: E402



def breach_column(identity: str) -> str:
    """total − sum(known parts) where the identity is broken or bounded, 0 where it holds."""
    return f"breach_{identity}"


def checkable_column(identity: str) -> str:
    return f"checkable_{identity}"


def _adder(suite: gx.ExpectationSuite):
    def add(expectation, check_id: str, columns: list[str]):
        expectation.meta = {"check_id": check_id, "columns": columns}
        expectation.severity = CHECKS[check_id].severity
        suite.add_expectation(expectation)
    return add


def _is_true(column: str):
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True])


def _add_keys_and_counts(add, unique_keys: bool) -> None:
    """Keys present (and unique), counts non-negative, a period of the convention, a unit in force."""
    for key in ("unit_code", "field_code"):
        add(gxe.ExpectColumnValuesToNotBeNull(column=key), "schema.key_present", [key])
    if unique_keys:
        add(gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "period_end", "field_code"]),
            "schema.key_unique", ["unit_code", "period_start", "period_end", "field_code"])
    for name in FIGURES:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0), "figures.non_negative", [name])
    add(_is_true("period_ok"), "period.convention", ["period_start", "period_end"])
    add(_is_true("unit_in_force"), "unit.known", ["unit_code"])


def bieu06_suite(name: str = "bieu06_rows", unique_keys: bool = False) -> gx.ExpectationSuite:
    """Biểu 06 rows: keys, types, unit system, period, identities, continuity, cross-check."""
    suite = gx.ExpectationSuite(name=name)
    add = _adder(suite)
    _add_keys_and_counts(add, unique_keys)
    add(_is_true("field_listed"), "field.known", ["field_code"])
    add(gxe.ExpectColumnValuesToBeInSet(column="empty_row", value_set=[False]), "completeness.empty_row", list(FIGURES))
    for total, parts in SUM_IDENTITIES.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=breach_column(total), min_value=0, max_value=0),
            IDENTITY_CHECKS[total], [total, *parts])
        add(_is_true(checkable_column(total)), "identity.unchecked", [total, *parts])
    total, parts = BALANCE_IDENTITY
    add(gxe.ExpectColumnValuesToBeBetween(column=breach_column("balance"), min_value=0, max_value=0),
        BALANCE_CHECK, [total, *parts])
    add(_is_true(checkable_column("balance")), "identity.unchecked", [total, *parts])
    add(_is_true("balance_exact"), "identity.balance_approximate", [total, *parts])
    add(gxe.ExpectColumnValuesToBeBetween(column="carried_over_gap", min_value=0, max_value=0),
        "continuity.carried_over", ["carried_over"])
    add(gxe.ExpectColumnValuesToBeBetween(column="records_excess", max_value=0),
        "crosscheck.records_vs_reported", list(FIGURES))
    return suite


def reconciled_figures_suite() -> gx.ExpectationSuite:
    """The audit of write–audit–publish: the rows about to be loaded and published (units not
    quarantined, one chosen source each) must be one row per unit, period and field, of units
    in force, non-negative, and hold every critical identity. A failure here is a defect of the
    pipeline, not of a source: the run stops before anything is loaded."""
    suite = gx.ExpectationSuite(name="reconciled_figures")
    add = _adder(suite)
    _add_keys_and_counts(add, unique_keys=True)
    for total, parts in SUM_IDENTITIES.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=breach_column(total), min_value=0, max_value=0),
            IDENTITY_CHECKS[total], [total, *parts])
    return suite


def dossier_records_suite() -> gx.ExpectationSuite:
    """Per source and unit, how many records break each record-level rule (counted in SQL)."""
    suite = gx.ExpectationSuite(name="dossier_records")
    add = _adder(suite)
    for check_id, (column, columns) in RECORD_CHECKS.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=0), check_id, columns)
    return suite


def unit_quarters_suite() -> gx.ExpectationSuite:
    """Per source and unit, the quarter's totals against the unit's own history and its peers."""
    suite = gx.ExpectationSuite(name="unit_quarters")
    add = _adder(suite)
    add(gxe.ExpectColumnValuesToBeBetween(column="history_excess", max_value=0), "plausibility.history",
        ["received_total", "resolved_total"])
    add(gxe.ExpectColumnValuesToBeBetween(column="peer_z", min_value=-4, max_value=4), "plausibility.peers",
        ["resolved_early", "resolved_on_time", "resolved_total"])
    add(gxe.ExpectColumnValuesToBeInSet(column="on_time_all", value_set=[False]), "plausibility.on_time_all",
        ["resolved_total", "resolved_late", "pending_overdue"])
    add(gxe.ExpectColumnValuesToBeInSet(column="no_dossiers", value_set=[False]), "completeness.no_dossiers",
        list(FIGURES))
    return suite
