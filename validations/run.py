"""Validate a period's Biểu 06 rows with GX and turn every failed row into a finding."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from tthc.findings import Finding  # noqa: E402
from tthc.model import BALANCE_IDENTITY, FIGURES, SUM_IDENTITIES  # noqa: E402
from tthc.periods import Period  # noqa: E402
from validations.suites import BALANCE_GAP, CHECK_MESSAGES, bieu06_suite, gap_column  # noqa: E402

ROW_ID = "row_id"


def with_identity_gaps(rows: pd.DataFrame) -> pd.DataFrame:
    """Adds total − sum(parts) for each identity; unknown when any figure is unknown."""
    frame = rows.copy()
    for total, parts in SUM_IDENTITIES.items():
        frame[gap_column(total)] = frame[total] - frame[list(parts)].sum(axis=1, min_count=len(parts))
    total, parts = BALANCE_IDENTITY
    frame[BALANCE_GAP] = frame[total] - frame[list(parts)].sum(axis=1, min_count=len(parts))
    frame[ROW_ID] = range(len(frame))
    return frame


def validate_bieu06(rows: pd.DataFrame, period: Period, units_in_force: list[str], field_codes: list[str],
                    results_path: Path | None = None) -> tuple[list[Finding], dict]:
    frame = with_identity_gaps(rows)
    figure_columns = [c for c in frame.columns if c.startswith("gap_") or c in FIGURES]
    for column in figure_columns:
        frame[column] = frame[column].astype("Int64").astype("float64")  # GX compares floats; NaN = unknown
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("bieu06")
    asset = source.add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("period").get_batch(batch_parameters={"dataframe": frame})
    suite = bieu06_suite(units_in_force, field_codes)
    result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                  "unexpected_index_column_names": [ROW_ID]})
    if results_path is not None:
        results_path.write_text(json.dumps(result.to_json_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    findings: list[Finding] = []
    by_id = frame.set_index(ROW_ID)
    for outcome in result.results:
        if outcome.success:
            continue
        meta = outcome.expectation_config.meta or {}
        check_id = meta.get("check_id", outcome.expectation_config.type)
        severity = getattr(outcome.expectation_config, "severity", "critical")
        severity = str(getattr(severity, "value", severity))
        columns = meta.get("columns", [])
        for index in outcome.result.get("unexpected_index_list") or []:
            row = by_id.loc[index[ROW_ID] if isinstance(index, dict) else index]
            findings.append(_finding(check_id, severity, columns, row, period))
    summary = {"success": bool(result.success), "evaluated": len(result.results),
               "failed": sum(not r.success for r in result.results), "rows": len(frame)}
    return findings, summary


def _finding(check_id: str, severity: str, columns: list[str], row: pd.Series, period: Period) -> Finding:
    observed = {c: _plain(row.get(c)) for c in columns}
    expected = None
    if check_id.startswith("identity."):
        total, *parts = columns
        known = [row.get(p) for p in parts]
        expected = {total: int(sum(known))} if all(pd.notna(v) for v in known) else None
    return Finding(
        check_id, severity,
        f"{CHECK_MESSAGES.get(check_id, check_id)}: {json.dumps(observed, ensure_ascii=False)}",
        period.start, period.end, source_id=row.get("source_id"), unit_code=_plain(row.get("unit_code")),
        field_code=_plain(row.get("field_code")), basis=row.get("basis"), columns=columns,
        observed=json.dumps(observed, ensure_ascii=False),
        expected=json.dumps(expected, ensure_ascii=False) if expected else None,
        location=row.get("landed_file"),
    )


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
