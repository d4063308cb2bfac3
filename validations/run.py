"""Run the GX suites on prepared frames and turn every failed row into a finding.

A figure that was not reported is unknown (NaN here), never 0: an identity with unknown
parts still bounds its total from below, and one with nothing to check is reported as
unchecked. Where identities fail, the typing-error diagnosis (validations/diagnosis.py)
says which figure is probably wrong; the figure itself stays as reported.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from tthc.findings import Finding  # noqa: E402
from tthc.form import BALANCE_IDENTITY, FIGURES, SUM_IDENTITIES
from tthc.form import FIGURE_LABELS, quarter_label  # noqa: E402
from tthc.periods import CONVENTIONS, Period, quarter  # noqa: E402
from tthc.checks import CHECKS, IDENTITY_CHECKS, title  # noqa: E402
from validations.diagnosis import Diagnosis, describe, diagnose, number_vi  # noqa: E402
from validations.suites import breach_column, bieu06_suite, checkable_column  # noqa: E402

ROW_ID = "row_id"
IDENTITIES = {**{total: (total, parts) for total, parts in SUM_IDENTITIES.items()}, "balance": BALANCE_IDENTITY}
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID],
                 "partial_unexpected_count": 0}


class GxSession:
    """One ephemeral GX context for a run: a pandas data source, one checkpoint per frame, and
    (when given a folder) a Data Docs site there, updated by every checkpoint."""

    def __init__(self, docs_dir: Path | None = None):
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        for site in list(self.context.get_config().data_docs_sites or {}):
            self.context.delete_data_docs_site(site)
        if docs_dir is not None:
            shutil.rmtree(docs_dir, ignore_errors=True)
            self.context.add_data_docs_site("run", {
                "class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
        self.source = self.context.data_sources.add_pandas("tthc")
        self.results: dict[str, dict] = {}
        self.runs: dict[str, int] = {}

    def validate(self, frame: pd.DataFrame, suite: gx.ExpectationSuite) -> list[tuple[str, str, list[str], list[int]]]:
        """Runs `suite` on `frame`; returns (check id, severity, columns, failing row ids) per failed expectation."""
        self.runs[suite.name] = self.runs.get(suite.name, 0) + 1
        name = suite.name if self.runs[suite.name] == 1 else f"{suite.name}_{self.runs[suite.name]}"
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        suite.name = name
        suite = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        actions = [UpdateDataDocsAction(name="data_docs")] if self.docs_dir is not None else []
        checkpoint = self.context.checkpoints.add(Checkpoint(
            name=f"{name}_checkpoint", validation_definitions=[definition], actions=actions, result_format=RESULT_FORMAT))
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        outcome = next(iter(result.run_results.values()))
        self.results[suite.name] = outcome.to_json_dict()
        failed = []
        for item in outcome.results:
            if item.success:
                continue
            meta = item.expectation_config.meta or {}
            check_id = meta.get("check_id", item.expectation_config.type)
            severity = getattr(item.expectation_config, "severity", None)
            severity = str(getattr(severity, "value", severity) or CHECKS.get(check_id, CHECKS["schema.key_present"]).severity)
            ids = [int(i[ROW_ID] if isinstance(i, dict) else i) for i in item.result.get("unexpected_index_list") or []]
            if not ids and item.result.get("unexpected_count") is None and "exception_info" in item.to_json_dict():
                raise RuntimeError(f"GX could not evaluate {check_id}: {item.exception_info}")
            failed.append((check_id, severity, list(meta.get("columns", [])), ids))
        return failed

    def write_results(self, path: Path) -> None:
        path.write_text(json.dumps(self.results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")


# ---------------------------------------------------------------- Biểu 06 rows

def prepare_rows(rows: pd.DataFrame, *, units_in_force: Iterable[str] | None = None,
                 unit_in_force=None, field_codes: Iterable[str] = (), period: Period | None = None,
                 convention: str | None = None) -> pd.DataFrame:
    """The columns the Biểu 06 suite reads: figures as floats (NaN = not reported), identity
    breaches, what can be checked, the period and unit system, continuity and cross-check gaps
    (those two stay NaN unless the caller filled `previous_pending_total` / `records_excess`)."""
    frame = rows.reset_index(drop=True).copy()
    for name in FIGURES:
        frame[name] = pd.to_numeric(frame[name] if name in frame else np.nan, errors="coerce").astype("float64")
    for name in ("unit_code", "field_code", "source_id", "basis", "landed_file"):
        if name not in frame:
            frame[name] = None
    figures = frame[list(FIGURES)]
    frame["empty_row"] = figures.isna().all(axis=1)
    for key, (total, parts) in IDENTITIES.items():
        known_parts = frame[list(parts)].notna().sum(axis=1)
        gap = frame[total] - frame[list(parts)].sum(axis=1, min_count=1)
        complete = frame[total].notna() & (known_parts == len(parts))
        bounded = frame[total].notna() & (known_parts > 0) & ~complete
        frame[breach_column(key)] = np.where(complete, gap, np.where(bounded, np.minimum(gap, 0), np.nan))
        frame[checkable_column(key)] = complete | bounded | frame["empty_row"]
    balance_total, balance_parts = BALANCE_IDENTITY
    others = [balance_total, *[p for p in balance_parts if p != "returned_withdrawn"]]
    frame["balance_exact"] = ~(frame["returned_withdrawn"].isna() & frame[others].notna().all(axis=1))
    if unit_in_force is None:
        allowed = set(units_in_force if units_in_force is not None else [])
        unit_in_force = lambda code, end: code in allowed  # noqa: E731
    ends = frame["period_end"] if "period_end" in frame else pd.Series([period.end if period else None] * len(frame))
    frame["unit_in_force"] = [bool(code is not None and unit_in_force(code, end)) for code, end in zip(frame["unit_code"], ends)]
    listed = set(field_codes)
    frame["field_listed"] = frame["field_code"].isna() | (frame["field_code"] == "") | frame["field_code"].isin(listed)
    frame["period_ok"] = _period_ok(frame, period, convention)
    if "previous_pending_total" in frame:
        frame["carried_over_gap"] = frame["carried_over"] - pd.to_numeric(frame["previous_pending_total"]).astype("float64")
    else:
        frame["carried_over_gap"] = np.nan
    if "records_excess" not in frame:
        frame["records_excess"] = np.nan
    frame[ROW_ID] = range(len(frame))
    return frame


def _period_ok(frame: pd.DataFrame, period: Period | None, convention: str | None) -> list[bool]:
    """The row's dates are a period of the province's convention (and the run's, when given)."""
    if "period_start" not in frame or "period_end" not in frame:
        return [True] * len(frame)
    verdicts = {}
    out = []
    for start, end in zip(frame["period_start"], frame["period_end"]):
        key = (start, end)
        if key not in verdicts:
            verdicts[key] = _is_period(start, end, period, convention)
        out.append(verdicts[key])
    return out


def _is_period(start, end, period: Period | None, convention: str | None) -> bool:
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return False
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if period is not None:
        return (start, end) == (period.start, period.end)
    for label_end in (end, end.replace(day=1)):
        try:
            expected = quarter(quarter_label(label_end), convention or CONVENTIONS[0])
        except ValueError:
            return False
        if (expected.start, expected.end) == (start, end):
            return True
    return False


def row_findings(frame: pd.DataFrame, failed, period: Period | None) -> list[Finding]:
    findings = []
    for check_id, severity, columns, ids in failed:
        for row_id in ids:
            row = frame.iloc[row_id]
            findings.append(bieu06_finding(check_id, severity, columns, row, period))
    return findings


def validate_bieu06(rows: pd.DataFrame, period: Period, units_in_force: list[str], field_codes: list[str],
                    results_path: Path | None = None, session: GxSession | None = None,
                    convention: str | None = None) -> tuple[list[Finding], dict]:
    """GX on a period's Biểu 06 rows: a finding per failed row and check. Identity findings carry
    the diagnosis' suggested fix; `diagnosis_findings` adds the diagnosis itself."""
    frame = rows if ROW_ID in rows else prepare_rows(rows, units_in_force=units_in_force, field_codes=field_codes,
                                                   period=period, convention=convention)
    own = session is None
    session = session or GxSession()
    failed = session.validate(frame, bieu06_suite())
    if own and results_path is not None:
        session.write_results(results_path)
    findings = row_findings(frame, failed, period)
    summary = {"success": not any(f.severity == "critical" for f in findings), "rows": len(frame),
               "failed_checks": sorted({c for c, *_ in failed})}
    return findings, summary


def _row_dict(row: pd.Series) -> dict:
    return {name: (None if pd.isna(row[name]) else int(row[name])) for name in FIGURES}


def _period_of(row: pd.Series, period: Period | None):
    start = row.get("period_start")
    end = row.get("period_end")
    if start is not None and not pd.isna(start):
        return pd.Timestamp(start).date(), pd.Timestamp(end).date() if end is not None and not pd.isna(end) else None
    return (period.start, period.end) if period else (None, None)


def _where(row: pd.Series) -> str:
    unit = _plain(row.get("unit_code"))
    field = _plain(row.get("field_code"))
    return f"Đơn vị {unit}" + (f", lĩnh vực {field}" if field else "")


def bieu06_finding(check_id: str, severity: str, columns: list[str], row: pd.Series, period: Period | None,
                   diagnosis: Diagnosis | None = None) -> Finding:
    figures = _row_dict(row)
    observed = {c: (figures[c] if c in figures else _plain(row.get(c))) for c in columns}
    expected = None
    fix = None
    detail = ""
    identity = next((k for k, v in {**IDENTITY_CHECKS, "balance": "identity.balance"}.items() if v == check_id), None)
    if identity is not None:
        total, parts = IDENTITIES[identity]
        known = [figures[p] for p in parts if figures[p] is not None]
        if len(known) == len(parts):
            expected = {total: sum(known)}
            detail = f"{number_vi(figures[total])} ≠ {number_vi(sum(known))} (chênh lệch {number_vi(figures[total] - sum(known))})"
        else:
            detail = (f"{FIGURE_LABELS[total]} {number_vi(figures[total])} nhỏ hơn tổng các số đã biết "
                      f"{number_vi(sum(known))} (thiếu số liệu: "
                      + ", ".join(FIGURE_LABELS[p] for p in parts if figures[p] is None) + ")")
        diagnosis = diagnosis or diagnose(figures)
        fix = diagnosis.suggested_fix
        detail += ". " + describe(diagnosis, figures, FIGURE_LABELS)
    elif check_id == "identity.unchecked":
        detail = "không có đủ số liệu để kiểm tra: " + ", ".join(
            f"{FIGURE_LABELS[c]} {number_vi(figures[c])}" for c in columns)
    elif check_id == "identity.balance_approximate":
        gap = figures["received_total"] - figures["resolved_total"] - figures["pending_total"]
        expected = {"returned_withdrawn": gap}
        detail = f"chênh lệch (3) − (7) − (11) = {number_vi(gap)}, có thể là số hồ sơ trả lại, rút, dừng xử lý"
    elif check_id == "continuity.carried_over":
        previous = int(row["previous_pending_total"])
        expected = {"carried_over": previous}
        detail = (f"{FIGURE_LABELS['carried_over']} {number_vi(figures['carried_over'])}, "
                  f"kỳ trước còn đang giải quyết {number_vi(previous)}")
    elif check_id == "crosscheck.records_vs_reported":
        records = json.loads(row["records_figures"])
        below = {c: v for c, v in records.items() if figures.get(c) is not None and v > figures[c]}
        columns = list(below) or columns
        observed = {c: figures[c] for c in columns}
        expected = {c: below[c] for c in below}
        detail = "phần mềm một cửa (chưa đầy đủ) đã ghi nhận nhiều hơn: " + ", ".join(
            f"{FIGURE_LABELS[c]} báo cáo {number_vi(figures[c])}, phần mềm {number_vi(v)}" for c, v in below.items())
    elif check_id == "figures.non_negative":
        detail = ", ".join(f"{FIGURE_LABELS.get(c, c)} = {observed[c]}" for c in columns)
    elif check_id in ("unit.known", "field.known", "schema.key_present", "period.convention"):
        detail = json.dumps(observed, ensure_ascii=False, default=str)
    start, end = _period_of(row, period)
    message = f"{_where(row)}: {title(check_id)}" + (f": {detail}" if detail else "")
    return Finding(
        check_id, severity, message, start, end, source_id=_plain(row.get("source_id")),
        unit_code=_plain(row.get("unit_code")), field_code=_plain(row.get("field_code")),
        basis=_plain(row.get("basis")), columns=list(columns),
        observed=json.dumps(observed, ensure_ascii=False, default=str),
        expected=json.dumps(expected, ensure_ascii=False) if expected else None,
        suggested_fix=fix, location=_location(row))


def _location(row: pd.Series) -> str | None:
    landed = _plain(row.get("landed_file"))
    sheet_row = _plain(row.get("row"))
    if landed and sheet_row:
        return f"{landed}, dòng {sheet_row}"
    return landed


def diagnosis_findings(frame: pd.DataFrame, period: Period | None) -> tuple[list[Finding], dict[int, Diagnosis]]:
    """One info finding per row whose identities fail: the ranked single-figure corrections.
    `expected` holds the ranked candidates, `suggested_fix` the one to suggest (or nothing)."""
    broken = np.zeros(len(frame), dtype=bool)
    for key in IDENTITIES:
        broken |= frame[breach_column(key)].fillna(0).to_numpy() != 0
    findings, diagnoses = [], {}
    for row_id in np.flatnonzero(broken):
        row = frame.iloc[row_id]
        figures = _row_dict(row)
        diagnosis = diagnose(figures)
        diagnoses[int(row[ROW_ID])] = diagnosis
        start, end = _period_of(row, period)
        involved = sorted({c for d in diagnosis.candidates for c in d.correction}, key=FIGURES.index)
        findings.append(Finding(
            "diagnosis.typing_error", CHECKS["diagnosis.typing_error"].severity,
            f"{_where(row)}: {describe(diagnosis, figures, FIGURE_LABELS)}", start, end,
            source_id=_plain(row.get("source_id")), unit_code=_plain(row.get("unit_code")),
            field_code=_plain(row.get("field_code")), basis=_plain(row.get("basis")),
            columns=involved or [t for t in diagnosis.failing],
            observed=json.dumps({c: figures[c] for c in involved} or figures, ensure_ascii=False),
            expected=json.dumps(diagnosis.ranked(), ensure_ascii=False),
            suggested_fix=diagnosis.suggested_fix, location=_location(row)))
    return findings, diagnoses


# ---------------------------------------------------------------- roll-ups

@dataclass
class RollupGroup:
    parent: pd.Series  # the row that states the total
    children: pd.DataFrame  # the rows it should be the sum of
    complete: bool  # every child is present: equality; otherwise the children bound the total
    check_id: str


def rollup_findings(groups: Iterable[RollupGroup], period: Period | None) -> list[Finding]:
    """Where a total and its parts are both reported they agree; with parts missing, the total
    cannot be below the sum of the parts that are there."""
    findings = []
    for group in groups:
        differ = {}
        for name in FIGURES:
            total = group.parent.get(name)
            parts = pd.to_numeric(group.children[name], errors="coerce")
            if total is None or pd.isna(total) or parts.notna().sum() == 0:
                continue
            known_sum = int(parts.sum())
            complete = group.complete and parts.notna().all()
            if (complete and int(total) != known_sum) or (not complete and int(total) < known_sum):
                differ[name] = (int(total), known_sum, complete)
        if not differ:
            continue
        row = group.parent
        start, end = _period_of(row, period)
        detail = "; ".join(f"{FIGURE_LABELS[c]} {number_vi(t)} {'≠' if full else '<'} tổng {number_vi(s)}"
                           for c, (t, s, full) in differ.items())
        findings.append(Finding(
            group.check_id, CHECKS[group.check_id].severity, f"{_where(row)}: {title(group.check_id)}: {detail}",
            start, end, source_id=_plain(row.get("source_id")), unit_code=_plain(row.get("unit_code")),
            field_code=_plain(row.get("field_code")), basis=_plain(row.get("basis")), columns=list(differ),
            observed=json.dumps({c: t for c, (t, s, _) in differ.items()}),
            expected=_json_or_none({c: s for c, (t, s, full) in differ.items() if full}),
            location=_location(row)))
    return findings


def _json_or_none(value) -> str | None:
    return json.dumps(value, ensure_ascii=False) if value else None


def _plain(value):
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
