"""Reconciled figures: the audit of write–audit–publish. The rows about to be loaded and
published (units not quarantined, one chosen source each) must be one row per unit, period
and field, of units in force, non-negative, and hold every critical identity. A failure here
is a defect of the pipeline, not of a source: the run stops before anything is loaded.

The rows are prepared as Biểu 06 rows and a failed check says what it says on a Biểu 06 row
(validations/bieu06_rows.py `ROW_MESSAGES`).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from tthc.checks import IDENTITY_CHECKS
from tthc.form import SUM_IDENTITIES
from tthc.periods import Period
from validations.bieu06_rows import ROW_MESSAGES, prepare_rows, row_findings
from validations.gx import GxSession, add_keys_and_counts, adder, breach_column, check_messages, gx, gxe


class AuditFailed(RuntimeError):
    """The reconciled figures break the published contract: nothing is loaded or published."""


def reconciled_figures_suite() -> gx.ExpectationSuite:
    """Keys present and unique, counts non-negative, the run's period, units in force, and the
    critical identities."""
    suite = gx.ExpectationSuite(name="reconciled_figures")
    add = adder(suite)
    add_keys_and_counts(add, unique_keys=True)
    for total, parts in SUM_IDENTITIES.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=breach_column(total), min_value=0, max_value=0),
            IDENTITY_CHECKS[total], [total, *parts])
    return check_messages(suite, ROW_MESSAGES)


def audit_reconciled(reconciled: pd.DataFrame, *, period: Period, units_in_force: Iterable[str],
                     field_codes: Iterable[str], convention: str, results_path: Path) -> dict:
    """Runs the reconciled-figures suite on the rows that load and publish would take (units not
    quarantined), writes the GX results to `results_path`; raises AuditFailed naming every
    failing unit, field and check."""
    rows = reconciled[reconciled["quality_status"] != "critical"]
    frame = prepare_rows(rows, units_in_force=units_in_force, field_codes=field_codes, period=period,
                         convention=convention)
    session = GxSession()
    failed = session.validate(frame, reconciled_figures_suite())
    session.write_results(results_path)
    problems = [f for f in row_findings(frame, failed, period) if f.severity == "critical"]
    if problems:
        listed = "; ".join(dict.fromkeys(f"{f.check_id} unit {f.unit_code} field {f.field_code}" for f in problems))
        raise AuditFailed(f"{len(problems)} reconciled rows of {period.label} break the published contract "
                          f"(reconciled_figures suite, {results_path}): {listed}")
    return {"audited_rows": len(frame)}
