"""`tthc validate FILE...`: Biểu 06 rows of workbooks or canonical CSV validated offline,
without a warehouse: the same suite and diagnosis as a run, on the figures in the files. The
files are read by the caller (runner/validate_files.py); this module validates the rows it is
given and writes the findings as text or JSON."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta

import pandas as pd

from tthc.findings import Finding
from validations.bieu06_rows import RollupGroup, bieu06_suite, diagnosis_findings, prepare_rows, rollup_findings, \
    row_findings
from validations.gx import GxSession


def validate_rows(rows: list[dict], units: pd.DataFrame, field_codes: Iterable[str],
                  convention: str) -> tuple[list[Finding], dict]:
    """Findings on the rows read from the files (unit_code, period_start, period_end, field_code,
    the figures, source_id, basis, landed_file, row; a total row has no field), and the
    diagnosis per (source_id, unit_code, field_code, period_start) of a row whose identities fail.
    `units` are every unit of the province with their validity (valid_from, valid_to, parent_code)."""
    frame = pd.DataFrame(rows)
    frame = _with_previous_pending(frame)

    validity: dict[str, list[tuple[date, date]]] = {}
    for code, start, end in zip(units["unit_code"], units["valid_from"], units["valid_to"]):
        validity.setdefault(code, []).append((start, end))

    def in_force(code, end) -> bool:
        return any(s <= end <= e for s, e in validity.get(code, [])) if end is not None else code in validity

    frame = prepare_rows(frame, unit_in_force=in_force, field_codes=field_codes, convention=convention)
    session = GxSession()
    findings = row_findings(frame, session.validate(frame, bieu06_suite("bieu06_canonical", unique_keys=True)), None)
    diagnosed, diagnoses = diagnosis_findings(frame, None)
    findings += diagnosed
    findings += rollup_findings(_rollups(frame, units), None)
    by_row = {}
    for row_id, diagnosis in diagnoses.items():
        row = frame.iloc[row_id]
        by_row[(row["source_id"], row["unit_code"], row["field_code"], row["period_start"])] = diagnosis
    return findings, by_row


def _with_previous_pending(frame: pd.DataFrame) -> pd.DataFrame:
    """carried_over can be checked where the files hold the unit's previous period too."""
    pending = {(u, f, e): p for u, f, e, p in zip(frame["unit_code"], frame["field_code"], frame["period_end"],
                                                  frame["pending_total"]) if p is not None and not pd.isna(p)}
    frame["previous_pending_total"] = [
        pending.get((u, f, s - timedelta(days=1))) if s is not None else None
        for u, f, s in zip(frame["unit_code"], frame["field_code"], frame["period_start"])]
    frame["previous_pending_total"] = pd.to_numeric(frame["previous_pending_total"], errors="coerce")
    return frame


def _rollups(frame: pd.DataFrame, units: pd.DataFrame) -> list[RollupGroup]:
    """A unit's total row (no field) against its field rows; a parent unit's rows against its
    units' rows for the same period and field, where both are in the files."""
    groups = []
    is_total = frame["field_code"].fillna("") == ""
    for _key, members in frame.groupby(["source_id", "unit_code", "period_start"], dropna=False):
        totals = members[is_total.loc[members.index]]
        parts = members[~is_total.loc[members.index]]
        if len(parts):
            groups += [RollupGroup(row, parts, True, "rollup.total_row") for _, row in totals.iterrows()]
    children: dict[str, set[str]] = {}
    for code, parent in zip(units["unit_code"], units["parent_code"]):
        if parent:
            children.setdefault(parent, set()).add(code)
    for (_start, end, _field), members in frame.groupby(["period_start", "period_end", "field_code"], dropna=False):
        present = set(members["unit_code"])
        for _, parent in members[members["unit_code"].isin(children)].iterrows():
            in_force = {c for c in children[parent["unit_code"]]
                        if any((u.valid_from <= end <= u.valid_to) for u in units[units["unit_code"] == c].itertuples())}
            reported = members[members["unit_code"].isin(in_force)]
            if len(reported):
                groups.append(RollupGroup(parent, reported, in_force <= present, "rollup.units"))
    return groups


def as_json(findings: list[Finding], diagnoses: dict) -> list[dict]:
    out = []
    for f in findings:
        diagnosis = diagnoses.get((f.source_id, f.unit_code, f.field_code, f.period_start)) \
            if f.check_id.startswith(("identity.", "diagnosis.")) and f.check_id not in (
                "identity.unchecked", "identity.balance_approximate") else None
        out.append({
            "unit_code": f.unit_code, "period_start": _iso(f.period_start), "period_end": _iso(f.period_end),
            "field_code": f.field_code or None, "check": f.check_id, "severity": f.severity, "message": f.message,
            "columns": f.columns, "observed": _json(f.observed), "expected": _json(f.expected),
            "suggested_fix": f.suggested_fix, "candidates": diagnosis.ranked() if diagnosis else [],
            "ambiguous": bool(diagnosis and diagnosis.ambiguous), "file": f.source_id, "location": f.location,
        })
    return out


def as_text(findings: list[Finding]) -> str:
    lines = []
    for f in sorted(findings, key=lambda f: ({"critical": 0, "warning": 1, "info": 2}[f.severity], f.unit_code or "")):
        fix = ""
        if f.suggested_fix:
            fix = " → đề xuất: " + ", ".join(f"{k} = {v}" for k, v in f.suggested_fix.items())
        lines.append(f"[{f.severity}] {f.check_id} {f.location or f.source_id or ''}: {f.message}{fix}")
    counts = {s: sum(f.severity == s for f in findings) for s in ("critical", "warning", "info")}
    lines.append(f"Tổng: {counts['critical']} nghiêm trọng, {counts['warning']} cảnh báo, {counts['info']} thông tin")
    return "\n".join(lines)


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _json(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
