"""Biểu 06 rows (self-reported and record-derived): their preparation, their GX suite, the
message of every check the suite reports, and the findings built beside the suite — the
typing-error diagnosis, continuity with the previous period, self-reported figures against
incomplete records, and the roll-up of total rows and parent units.

A figure that was not reported is unknown (NaN here), never 0: an identity with unknown
parts still bounds its total from below, and one with nothing to check is reported as
unchecked. Where identities fail, the typing-error diagnosis (validations/diagnosis.py)
says which figure is probably wrong; the figure itself stays as reported.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from tthc.checks import BALANCE_CHECK, CHECKS, EXTRA_IDENTITY_CHECKS, IDENTITY_CHECKS, title
from tthc.findings import Finding
from tthc.form import (BALANCE_IDENTITY, EXTRA_FIGURES, EXTRA_SUM_IDENTITIES, FIGURES, OPTIONAL_FIGURES, REPORTED_FIGURES,
                       SUM_IDENTITIES)
from tthc.form import REPORTED_LABELS as FIGURE_LABELS
from tthc.periods import CONVENTIONS, PERIOD_KIND_LABELS, Period, period_kind
from validations.diagnosis import Diagnosis, describe, diagnose, number_vi
from validations.gx import (ROW_ID, Failed, GxSession, add_keys_and_counts, adder, breach_column, check_messages,
                            checkable_column, gx, gxe, is_true, json_or_none, plain)

IDENTITIES = {**{total: (total, parts) for total, parts in SUM_IDENTITIES.items()}, "balance": BALANCE_IDENTITY,
              **EXTRA_SUM_IDENTITIES}


# ---------------------------------------------------------------- preparation

def prepare_rows(rows: pd.DataFrame, *, units_in_force: Iterable[str] | None = None,
                 unit_in_force=None, field_codes: Iterable[str] = (), period: Period | None = None,
                 convention: str | None = None) -> pd.DataFrame:
    """The columns the Biểu 06 suite reads: figures as floats (NaN = not reported), identity
    breaches, what can be checked, the period and unit system, continuity and cross-check gaps
    (those two stay NaN unless the caller filled `previous_pending_total` / `records_excess`)."""
    frame = rows.reset_index(drop=True).copy()
    for name in REPORTED_FIGURES:
        frame[name] = (pd.to_numeric(frame[name], errors="coerce").astype("float64") if name in frame
                       else np.full(len(frame), np.nan))
    for name in ("unit_code", "field_code", "source_id", "basis", "landed_file"):
        if name not in frame:
            frame[name] = None
    figures = frame[list(REPORTED_FIGURES)]
    frame["empty_row"] = figures.isna().all(axis=1)
    for key, (total, parts) in IDENTITIES.items():
        known_parts = frame[list(parts)].notna().sum(axis=1)
        gap = frame[total] - frame[list(parts)].sum(axis=1, min_count=1)
        complete = frame[total].notna() & (known_parts == len(parts))
        bounded = frame[total].notna() & (known_parts > 0) & ~complete
        if key in EXTRA_SUM_IDENTITIES:  # without an optional figure given it only repeats a bound of the form's
            extra = [n for n in (total, *parts) if n in EXTRA_FIGURES]
            given = frame[extra].notna().any(axis=1)
            complete, bounded = complete & given, bounded & given
        frame[breach_column(key)] = np.where(complete, gap, np.where(bounded, np.minimum(gap, 0), np.nan))
        frame[checkable_column(key)] = complete | bounded | frame["empty_row"]
    balance_total, balance_parts = BALANCE_IDENTITY
    others = [balance_total, *[p for p in balance_parts if p != "returned_withdrawn"]]
    frame["balance_exact"] = ~(frame["returned_withdrawn"].isna() & frame[others].notna().all(axis=1))
    if unit_in_force is None:
        allowed = set(units_in_force if units_in_force is not None else [])
        unit_in_force = lambda code, end: code in allowed  # noqa: E731
    ends = frame["period_end"] if "period_end" in frame else pd.Series([period.end if period else None] * len(frame))
    if "unit_in_force" in frame:  # computed by the caller over the whole unit list (validations/offline.py)
        frame["unit_in_force"] = frame["unit_in_force"].fillna(False).astype(bool)
    else:
        frame["unit_in_force"] = _units_in_force(frame["unit_code"], ends, unit_in_force)
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


def _units_in_force(codes: pd.Series, ends, unit_in_force) -> np.ndarray:
    """unit_in_force(code, end) of every row, asked once per distinct pair."""
    pairs = pd.DataFrame({"code": codes.to_numpy(dtype=object), "end": list(ends)})
    distinct = pairs.drop_duplicates().copy()
    distinct["ok"] = [bool(isinstance(code, str) and unit_in_force(code, end))
                      for code, end in zip(distinct["code"], distinct["end"])]
    return pairs.merge(distinct, how="left", on=["code", "end"])["ok"].to_numpy(dtype=bool)


def _period_ok(frame: pd.DataFrame, period: Period | None, convention: str | None) -> list[bool] | np.ndarray:
    """The row's dates are a period of the province's convention (and the run's, when given),
    decided once per distinct pair of dates."""
    if "period_start" not in frame or "period_end" not in frame:
        return [True] * len(frame)
    pairs = pd.DataFrame({"start": frame["period_start"].to_numpy(dtype=object),
                          "end": frame["period_end"].to_numpy(dtype=object)})
    distinct = pairs.drop_duplicates().copy()
    distinct["ok"] = [_is_period(start, end, period, convention) for start, end in zip(distinct["start"], distinct["end"])]
    return pairs.merge(distinct, how="left", on=["start", "end"])["ok"].to_numpy(dtype=bool)


def _is_period(start, end, period: Period | None, convention: str | None) -> bool:
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return False
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if period is not None:
        return (start, end) == (period.start, period.end)
    return period_kind(start, end, convention or CONVENTIONS[0]) is not None


def period_detail(start, end) -> str:
    """What the dates of a period are, for a finding: the convention they follow, or none."""
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return "ngày đầu hoặc ngày cuối kỳ để trống"
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    dates = f"kỳ {start:%d/%m/%Y} – {end:%d/%m/%Y}"
    for name in CONVENTIONS:
        kind = period_kind(start, end, name)
        if kind:
            return f"{dates} là {PERIOD_KIND_LABELS[kind]} theo quy ước {name}"
    return (f"{dates} không phải tháng, quý, 6 tháng hay năm theo quy ước nào (calendar_quarter: từ ngày 1 đến "
            "ngày cuối tháng; decree_09_2019: từ ngày 15 đến ngày 14)")


# ---------------------------------------------------------------- continuity (prepared before the suite)

def with_continuity(rows: pd.DataFrame, earlier: pd.DataFrame, previous: Period) -> pd.DataFrame:
    """Adds the previous period's pending_total of the same source, unit and field; a field the
    unit did not list last period had nothing pending. Unknown where the source had no row for
    the unit then."""
    rows = rows.copy()
    last = earlier[(earlier["period_start"] == previous.start) & (earlier["period_end"] == previous.end)]
    if last.empty:
        rows["previous_pending_total"] = np.nan
        return rows
    pending = {(s, u, f): p for s, u, f, p in zip(last["source_id"], last["unit_code"], last["field_code"],
                                                   last["pending_total"])}
    reported = set(zip(last["source_id"], last["unit_code"]))
    rows["previous_pending_total"] = [
        (np.nan if pd.isna(pending.get((s, u, f), 0)) else float(pending.get((s, u, f), 0))) if (s, u) in reported else np.nan
        for s, u, f in zip(rows["source_id"], rows["unit_code"], rows["field_code"])]
    return rows


def continuity_unchecked(frame: pd.DataFrame, earlier: pd.DataFrame, previous: Period, period: Period) -> list[Finding]:
    """Where the previous period is not in the warehouse (at all, or for a source and unit)."""
    last = earlier[(earlier["period_start"] == previous.start) & (earlier["period_end"] == previous.end)]
    check = CHECKS["continuity.unchecked"]
    if last.empty:
        return [Finding(check.id, check.severity,
                        f"{check.title} ({previous.label}, {previous.start:%d/%m/%Y} – {previous.end:%d/%m/%Y}): "
                        "số từ kỳ trước (6) của mọi đơn vị chưa được đối chiếu", period.start, period.end,
                        columns=["carried_over"], location=f"core.fact_bieu06 {previous.label}")]
    missing = frame[frame["previous_pending_total"].isna() & frame["carried_over"].notna()]
    out = []
    for (source, unit), _ in missing.groupby(["source_id", "unit_code"], dropna=False):
        out.append(Finding(check.id, check.severity,
                           f"Đơn vị {unit}: {check.title} {previous.label} của nguồn {source}", period.start, period.end,
                           source_id=source, unit_code=unit, columns=["carried_over"],
                           location=f"core.fact_bieu06 {previous.label}"))
    return out


# ---------------------------------------------------------------- records vs self-reported (prepared before the suite)

def with_crosscheck(frame: pd.DataFrame, units: pd.DataFrame, period: Period, *, bases: Mapping[str, str],
                    coverage: Mapping[str, Callable[[str, str, Period], bool | None]],
                    tolerance_abs: float = 0, tolerance_rel: float = 0) -> pd.DataFrame:
    """Self-reported rows against the figures of a records source (`bases[source] == "records"`)
    whose coverage of the unit is incomplete (`coverage[source](unit, level, period) is False`):
    records are then a lower bound, so only a reported figure below them (beyond the tolerance)
    is a finding. Complete coverage is compared by reconcile (`reconcile.sources_disagree`)."""
    levels = dict(zip(units["unit_code"], units["level"]))
    partial_sources = {s for s, basis in bases.items() if basis == "records"}
    records = frame[frame["basis"] == "records"]
    records = records[np.array([coverage[s](u, levels.get(u, ""), period) is False if s in partial_sources else False
                                for s, u in zip(records["source_id"], records["unit_code"])], dtype=bool)]
    frame["records_figures"] = None
    if records.empty:
        return frame
    lookup = {(u, f): r for u, f, r in zip(records["unit_code"], records["field_code"],
                                           records[list(FIGURES)].to_dict("records"))}
    excess = np.full(len(frame), np.nan)
    figures_json = [None] * len(frame)
    for i, (basis, unit, field) in enumerate(zip(frame["basis"], frame["unit_code"], frame["field_code"])):
        found = lookup.get((unit, field)) if basis == "self_reported" else None
        if found is None:
            continue
        worst = -np.inf
        for name in FIGURES:
            reported, counted = frame.at[i, name], found[name]
            if pd.isna(reported) or pd.isna(counted):
                continue
            worst = max(worst, counted - reported - max(tolerance_abs, tolerance_rel * counted))
        excess[i] = worst if worst > -np.inf else np.nan
        figures_json[i] = json.dumps({k: int(v) for k, v in found.items() if not pd.isna(v)})
    frame["records_excess"] = excess
    frame["records_figures"] = figures_json
    return frame


# ---------------------------------------------------------------- the suite and its messages

@dataclass
class Message:
    """What a check says about one row: the detail after its title, and what the finding names."""
    detail: str = ""
    expected: dict | None = None
    suggested_fix: dict | None = None
    columns: list[str] | None = None  # when the message narrows the suite's columns
    observed: dict | None = None  # when it narrows the observed figures with them


# a message builder: (row, its figures, the observed values of the suite's columns, those columns) → Message
MessageBuilder = Callable[[pd.Series, dict, dict, list[str]], Message]


def _identity(identity: str, row: pd.Series, figures: dict, observed: dict, columns: list[str]) -> Message:
    total, parts = IDENTITIES[identity]
    figures = {**{p: None for p in (total, *parts)}, **figures}
    known = [figures[p] for p in parts if figures[p] is not None]
    expected = None
    if len(known) == len(parts):
        expected = {total: sum(known)}
        detail = f"{number_vi(figures[total])} ≠ {number_vi(sum(known))} (chênh lệch {number_vi(figures[total] - sum(known))})"
    else:
        detail = (f"{FIGURE_LABELS[total]} {number_vi(figures[total])} nhỏ hơn tổng các số đã biết "
                  f"{number_vi(sum(known))} (thiếu số liệu: "
                  + ", ".join(FIGURE_LABELS[p] for p in parts if figures[p] is None) + ")")
    diagnosis = diagnose(figures, children_of(row))
    detail += ". " + describe(diagnosis, figures, FIGURE_LABELS)
    return Message(detail, expected, diagnosis.suggested_fix)


def _unchecked(row, figures, observed, columns) -> Message:
    return Message("không có đủ số liệu để kiểm tra: " + ", ".join(
        f"{FIGURE_LABELS[c]} {number_vi(figures[c])}" for c in columns))


def _balance_approximate(row, figures, observed, columns) -> Message:
    gap = figures["received_total"] - figures["resolved_total"] - figures["pending_total"]
    return Message(f"chênh lệch (3) − (7) − (11) = {number_vi(gap)}, có thể là số hồ sơ trả lại, rút, dừng xử lý",
                   {"returned_withdrawn": gap})


def _period(row, figures, observed, columns) -> Message:
    return Message(json.dumps(observed, ensure_ascii=False, default=str) + "; "
                   + period_detail(row.get("period_start"), row.get("period_end")))


def _carried_over(row, figures, observed, columns) -> Message:
    previous = int(row["previous_pending_total"])
    return Message(f"{FIGURE_LABELS['carried_over']} {number_vi(figures['carried_over'])}, "
                   f"kỳ trước còn đang giải quyết {number_vi(previous)}", {"carried_over": previous})


def _records_vs_reported(row, figures, observed, columns) -> Message:
    records = json.loads(row["records_figures"])
    below = {c: v for c, v in records.items() if figures.get(c) is not None and v > figures[c]}
    columns = list(below) or columns
    detail = "phần mềm một cửa (chưa đầy đủ) đã ghi nhận nhiều hơn: " + ", ".join(
        f"{FIGURE_LABELS[c]} báo cáo {number_vi(figures[c])}, phần mềm {number_vi(v)}" for c, v in below.items())
    return Message(detail, {c: below[c] for c in below}, columns=columns, observed={c: figures[c] for c in columns})


def _non_negative(row, figures, observed, columns) -> Message:
    return Message(", ".join(f"{FIGURE_LABELS.get(c, c)} = {observed[c]}" for c in columns))


def _observed_json(row, figures, observed, columns) -> Message:
    return Message(json.dumps(observed, ensure_ascii=False, default=str))


def _title_only(row, figures, observed, columns) -> Message:
    return Message()


ROW_MESSAGES: dict[str, MessageBuilder] = {
    **{IDENTITY_CHECKS[total]: partial(_identity, total) for total in SUM_IDENTITIES},
    BALANCE_CHECK: partial(_identity, "balance"),
    **{EXTRA_IDENTITY_CHECKS[key]: partial(_identity, key) for key in EXTRA_SUM_IDENTITIES},
    "identity.unchecked": _unchecked,
    "identity.balance_approximate": _balance_approximate,
    "continuity.carried_over": _carried_over,
    "crosscheck.records_vs_reported": _records_vs_reported,
    "figures.non_negative": _non_negative,
    "unit.known": _observed_json,
    "field.known": _observed_json,
    "schema.key_present": _observed_json,
    "period.convention": _period,
    "schema.key_unique": _title_only,
    "completeness.empty_row": _title_only,
}


def bieu06_suite(name: str = "bieu06_rows", unique_keys: bool | str = False, *, reported_shapes: bool = False,
                 period_severity: str | None = None) -> gx.ExpectationSuite:
    """Biểu 06 rows: keys, types, unit system, period, identities, continuity, cross-check.
    `reported_shapes`: also the figures real reports print beside the form's (OPTIONAL_FIGURES) and
    their identities, which `tthc validate` reads; `period_severity`: offline, a period off the
    convention is a warning (a file's convention is not known there)."""
    suite = gx.ExpectationSuite(name=name)
    add = adder(suite)
    add_keys_and_counts(add, unique_keys, period_severity=period_severity)
    add(is_true("field_listed"), "field.known", ["field_code"])
    add(gxe.ExpectColumnValuesToBeInSet(column="empty_row", value_set=[False]), "completeness.empty_row", list(FIGURES))
    for total, parts in SUM_IDENTITIES.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=breach_column(total), min_value=0, max_value=0),
            IDENTITY_CHECKS[total], [total, *parts])
        add(is_true(checkable_column(total)), "identity.unchecked", [total, *parts])
    if reported_shapes:
        for name in OPTIONAL_FIGURES:
            add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0), "figures.non_negative", [name])
        for key, (total, parts) in EXTRA_SUM_IDENTITIES.items():
            add(gxe.ExpectColumnValuesToBeBetween(column=breach_column(key), min_value=0, max_value=0),
                EXTRA_IDENTITY_CHECKS[key], [total, *parts])
    total, parts = BALANCE_IDENTITY
    add(gxe.ExpectColumnValuesToBeBetween(column=breach_column("balance"), min_value=0, max_value=0),
        BALANCE_CHECK, [total, *parts])
    add(is_true(checkable_column("balance")), "identity.unchecked", [total, *parts])
    add(is_true("balance_exact"), "identity.balance_approximate", [total, *parts])
    add(gxe.ExpectColumnValuesToBeBetween(column="carried_over_gap", min_value=0, max_value=0),
        "continuity.carried_over", ["carried_over"])
    add(gxe.ExpectColumnValuesToBeBetween(column="records_excess", max_value=0),
        "crosscheck.records_vs_reported", list(FIGURES))
    return check_messages(suite, ROW_MESSAGES)


def bieu06_finding(check_id: str, severity: str, columns: list[str], row: pd.Series, period: Period | None) -> Finding:
    """The finding of a failed check on one row, in the words of ROW_MESSAGES[check_id]."""
    figures = _row_dict(row)
    observed = {c: (figures[c] if c in figures else plain(row.get(c))) for c in columns}
    message = ROW_MESSAGES[check_id](row, figures, observed, list(columns))
    if message.columns is not None:
        columns, observed = message.columns, message.observed
    start, end = _period_of(row, period)
    text = f"{_where(row)}: {title(check_id)}" + (f": {message.detail}" if message.detail else "")
    return Finding(
        check_id, severity, text, start, end, source_id=plain(row.get("source_id")),
        unit_code=plain(row.get("unit_code")), field_code=plain(row.get("field_code")),
        basis=plain(row.get("basis")), columns=list(columns),
        observed=json.dumps(observed, ensure_ascii=False, default=str),
        expected=json.dumps(message.expected, ensure_ascii=False) if message.expected else None,
        suggested_fix=message.suggested_fix, location=_location(row))


def row_findings(frame: pd.DataFrame, failed: list[Failed], period: Period | None) -> list[Finding]:
    findings = []
    for check_id, severity, columns, ids in failed:
        for row_id in ids:
            findings.append(bieu06_finding(check_id, severity, columns, frame.iloc[row_id], period))
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


# ---------------------------------------------------------------- the typing-error diagnosis

def broken_rows(frame: pd.DataFrame) -> np.ndarray:
    """The positions of the prepared rows where an identity fails (the rows the diagnosis reads)."""
    broken = np.zeros(len(frame), dtype=bool)
    for key in IDENTITIES:
        broken |= frame[breach_column(key)].fillna(0).to_numpy() != 0
    return np.flatnonzero(broken)


def diagnosis_findings(frame: pd.DataFrame, period: Period | None, rows: Iterable[int] | None = None,
                       children: Mapping[int, dict] | None = None) -> tuple[list[Finding], dict[int, Diagnosis]]:
    """One info finding per row whose identities fail (or per row of `rows`, positions among
    those): the ranked single-figure corrections. `expected` holds the ranked candidates,
    `suggested_fix` the one to suggest (or nothing). `children[row]`: the sums of that row's
    level or field rows, which corroborate a correction."""
    check = CHECKS["diagnosis.typing_error"]
    findings, diagnoses = [], {}
    for row_id in (broken_rows(frame) if rows is None else rows):
        row = frame.iloc[row_id]
        figures = _row_dict(row)
        diagnosis = diagnose(figures, (children or {}).get(int(row_id)) or children_of(row))
        diagnoses[int(row[ROW_ID])] = diagnosis
        start, end = _period_of(row, period)
        involved = sorted({c for d in diagnosis.candidates for c in d.correction}, key=REPORTED_FIGURES.index)
        findings.append(Finding(
            check.id, check.severity,
            f"{_where(row)}: {describe(diagnosis, figures, FIGURE_LABELS)}", start, end,
            source_id=plain(row.get("source_id")), unit_code=plain(row.get("unit_code")),
            field_code=plain(row.get("field_code")), basis=plain(row.get("basis")),
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
        parts = {}
        for name in FIGURES:
            values = pd.to_numeric(group.children[name], errors="coerce")
            parts[name] = (int(values.sum()), int(values.notna().sum()), len(values))
        finding = rollup_finding(group.parent, parts, group.complete, group.check_id, period)
        if finding is not None:
            findings.append(finding)
    return findings


def rollup_finding(parent, parts: Mapping[str, tuple[int, int, int]], complete: bool, check_id: str,
                   period: Period | None) -> Finding | None:
    """The finding of one total against its parts, given per figure as (sum of the known parts,
    how many are known, how many parts): what a stream keeps of a group instead of its rows.
    `parent` is the total's row (a Series or a dict)."""
    differ = {}
    for name in parts:
        total = parent.get(name)
        known_sum, known, count = parts[name]
        if total is None or pd.isna(total) or known == 0:
            continue
        full = complete and known == count
        if (full and int(total) != known_sum) or (not full and int(total) < known_sum):
            differ[name] = (int(total), known_sum, full)
    if not differ:
        return None
    start, end = _period_of(parent, period)
    detail = "; ".join(f"{FIGURE_LABELS[c]} {number_vi(t)} {'≠' if full else '<'} tổng {number_vi(s)}"
                       for c, (t, s, full) in differ.items())
    return Finding(
        check_id, CHECKS[check_id].severity, f"{_where(parent)}: {title(check_id)}: {detail}",
        start, end, source_id=plain(parent.get("source_id")), unit_code=plain(parent.get("unit_code")),
        field_code=plain(parent.get("field_code")), basis=plain(parent.get("basis")), columns=list(differ),
        observed=json.dumps({c: t for c, (t, s, _) in differ.items()}),
        expected=json_or_none({c: s for c, (t, s, full) in differ.items() if full}),
        location=_location(parent))


TOTAL_ROW_KEY = ["source_id", "landed_file", "unit_code", "period_start", "period_end"]


def total_row_groups(total_rows: pd.DataFrame, frame: pd.DataFrame) -> list[RollupGroup]:
    """The "Tổng cộng" row of each workbook sheet against the field rows of the same source,
    workbook, unit and period among the Biểu 06 rows.

    `total_rows` are the workbooks' total rows as canonicalize writes them (source_id,
    landed_file, sheet, row, unit_code, period_start, period_end, field_name, the figures and
    basis: transforms.canonicalize.TOTAL_ROWS_SCHEMA). A workbook gives a unit and period one
    row per field (the extractor refuses a repeated one), so the field rows of a total are the
    Biểu 06 rows of its file, unit and period."""
    if total_rows is None or total_rows.empty:
        return []
    totals = total_rows.copy()
    fields = frame[frame["basis"] == "self_reported"]
    members = {key: group for key, group in fields.groupby(
        [fields[c].map(_key_value) for c in TOTAL_ROW_KEY], sort=False, dropna=False)}
    groups = []
    for source_id in pd.unique(totals["source_id"]):
        landed = totals[totals["source_id"] == source_id]
        for _, workbook in landed.groupby(["landed_file", "sheet"]):
            for _, total in workbook.iterrows():
                key = tuple(_key_value(total[c]) for c in TOTAL_ROW_KEY)
                groups.append(RollupGroup(total, members.get(key, fields.iloc[0:0]), True, "rollup.total_row"))
    return groups


def _key_value(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


# ---------------------------------------------------------------- a row's values in a finding

def _row_dict(row: pd.Series) -> dict:
    """The form's figures (None: not reported), then the optional ones the row gives."""
    figures = {name: (None if pd.isna(row[name]) else int(row[name])) for name in FIGURES}
    figures.update({name: int(row[name]) for name in OPTIONAL_FIGURES if name in row and not pd.isna(row[name])})
    return figures


CHILDREN_SUMS = "children_sums"  # JSON {figure: sum of the row's level or field rows}, where all are given


def children_of(row) -> dict | None:
    """The sums of a total row's field rows or a parent unit's units, where the caller found them."""
    text = row.get(CHILDREN_SUMS) if hasattr(row, "get") else None
    return json.loads(text) if isinstance(text, str) else None


def _period_of(row: pd.Series, period: Period | None):
    start = row.get("period_start")
    end = row.get("period_end")
    if start is not None and not pd.isna(start):
        return pd.Timestamp(start).date(), pd.Timestamp(end).date() if end is not None and not pd.isna(end) else None
    return (period.start, period.end) if period else (None, None)


def _where(row: pd.Series) -> str:
    unit = plain(row.get("unit_code"))
    field = plain(row.get("field_code"))
    return f"Đơn vị {unit}" + (f", lĩnh vực {field}" if field else "")


def _location(row: pd.Series) -> str | None:
    landed = plain(row.get("landed_file"))
    sheet_row = plain(row.get("row"))
    if landed and sheet_row:
        return f"{landed}, dòng {sheet_row}"
    return landed
