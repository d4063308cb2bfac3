"""A quarter validated from plain inputs: every dataset's suite (Biểu 06 rows, dossier records,
unit quarters), the typing-error diagnosis, continuity, the roll-up of workbook total rows; the
GX results and Data Docs and the call-back list written to one folder.

The caller reads everything (the run's files, the warehouse's earlier figures, the settings)
and hands it over; nothing here knows where a run keeps its files.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tthc.config import Outliers
from tthc.findings import Finding
from tthc.periods import Period
from validations.bieu06_rows import (bieu06_suite, continuity_unchecked, diagnosis_findings, prepare_rows,
                                     rollup_findings, row_findings, total_row_groups, with_continuity,
                                     with_crosscheck)
from validations.callback import write_callback_list
from validations.dossier_records import validate_records
from validations.gx import GxSession
from validations.unit_quarters import validate_unit_quarters

Coverage = Callable[[str, str, Period], "bool | None"]


def validate_quarter(rows: pd.DataFrame, *, period: Period, dossiers: Path, several_units: Path | None,
                     total_rows: pd.DataFrame, earlier: pd.DataFrame, units: pd.DataFrame,
                     field_codes: Iterable[str], convention: str, bases: Mapping[str, str],
                     coverage: Mapping[str, Coverage], tolerance_abs: float = 0, tolerance_rel: float = 0,
                     published: pd.DataFrame | None = None, outliers: Outliers | None = None,
                     finished_without_date: str = "returned_at", handed_over: Iterable[tuple[str, str]] = (),
                     results_path: Path, docs_dir: Path, callback_dir: Path) -> tuple[list[Finding], dict]:
    """All checks of a quarter on its Biểu 06 rows and its dossier records.

    rows          the Biểu 06 rows, record-derived and self-reported (unit_code, period_start,
                  period_end, field_code, the figures, basis, source_id, landed_file)
    dossiers      the canonical dossiers Parquet; several_units the (source_id, dossier_id)
                  a source lists under several units (Parquet; absent or None: none)
    total_rows    the workbooks' "Tổng cộng" rows (transforms.canonicalize.TOTAL_ROWS_SCHEMA)
    earlier       earlier periods' Biểu 06 rows (warehouse history: unit_code, period_start,
                  period_end, field_code, source_id, basis, the figures), from
                  `validations.unit_quarters.history_since` on
    units         the units in force (unit_code, level, valid_from, unit_name …)
    bases         source id → "records" | "self_reported"
    coverage      source id → `(unit_code, level, period) → True/False/None` (complete, partial,
                  not covered); tolerance_abs/_rel the reconciliation tolerances
    published     the newest vintage's unit figures of this period (unit_code, vintage, the
                  figures: `warehouse.history.published_figures`; None or empty: none yet)
    outliers      the thresholds of figures.outlier (config `outliers:`)
    finished_without_date  the published rule set's rule of that name (tthc.rules), which the
                  record findings state
    handed_over   (unit_code, field_code) of units that existed before a reform of the units and took
                  over the old units' pending dossiers of a field in this quarter (a department given a
                  field of the abolished districts): their carried over is compared by the hand-over
                  check of the successor group (validations/reform_handover.py), not with their own
                  previous pending
    results_path  the GX results (JSON); docs_dir the Data Docs site; callback_dir gets the
                  call-back list (CSV and .xlsx)
    """
    field_codes = list(field_codes)
    session = GxSession(docs_dir)
    previous = period.previous(convention)
    valid_from = dict(zip(units["unit_code"], units["valid_from"]))
    if len(earlier):
        earlier = earlier[np.array([valid_from.get(u) is not None and s >= valid_from[u]
                                    for u, s in zip(earlier["unit_code"], earlier["period_start"])], dtype=bool)]

    continued = with_continuity(rows, earlier, previous)
    handed_over = set(handed_over)
    took_over = np.array([(u, f) in handed_over for u, f in zip(continued["unit_code"], continued["field_code"])],
                         dtype=bool)
    continued.loc[took_over, "previous_pending_total"] = np.nan
    frame = prepare_rows(continued, units_in_force=units["unit_code"],
                         field_codes=field_codes, period=period, convention=convention)
    frame = with_crosscheck(frame, units, period, bases=bases, coverage=coverage,
                            tolerance_abs=tolerance_abs, tolerance_rel=tolerance_rel)
    findings = row_findings(frame, session.validate(frame, bieu06_suite()), period)
    diagnosed, _ = diagnosis_findings(frame, period)
    findings += diagnosed
    # a unit that began after the previous period has no previous figures of its own, and a unit that took
    # over a field's dossiers has more than its own: the hand-over check compares their carried over
    # (validations/reform_handover.py); a code not in force is already a unit.known finding
    own_history = np.array([u in valid_from and not (valid_from[u] is not None and valid_from[u] > previous.end)
                            and (u, f) not in handed_over
                            for u, f in zip(frame["unit_code"], frame["field_code"])], dtype=bool)
    findings += continuity_unchecked(frame[own_history], earlier, previous, period)
    findings += rollup_findings(total_row_groups(total_rows, frame), period)

    found, counts = validate_records(session, dossiers, period, field_codes, several_units, units["unit_code"],
                                     finished_without_date)
    findings += found

    found, quarters = validate_unit_quarters(session, frame, earlier, units, period, published=published,
                                             outliers=outliers)
    findings += found

    session.write_results(results_path)
    write_callback_list(findings, units, callback_dir)
    return findings, {"rows": len(frame), "record_units": len(counts), "unit_quarters": len(quarters),
                      "history_rows": len(earlier), "data_docs": str(docs_dir / "index.html")}
