"""One figure per unit, period and field: which source wins (docs/reconciliation.md).

Records from one-stop software win over a self-reported spreadsheet where the software's
coverage of the unit is complete for the period; otherwise the spreadsheet wins; records with
incomplete coverage are used only when nothing else was reported, and are flagged.
"""
from __future__ import annotations

import json
from collections.abc import Collection

import pandas as pd

from tthc.config import Settings
from tthc.findings import Finding, finding
from tthc.form import BESIDE_FORM_FIGURES, FACT_FIGURES, FIGURES, REPORTING_LEVELS, SEVERITY_RANK
from tthc.landing import RECORDS, SELF_REPORTED
from tthc.periods import Period

# the finding of validations.dossier_records that counts a source's records under no unit in force
UNPLACED_CHECK = "records.unit_unknown"
EMPTY = "không có bản ghi nào trong kỳ"


def reconcile(rows: pd.DataFrame, units: pd.DataFrame, findings: list[Finding], settings: Settings,
              period: Period, missing_sources: dict[str, str], bases: dict[str, str],
              empty_sources: Collection[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, list[Finding]]:
    """Returns (reconciled field rows, the decision per unit, new findings).

    `units` are the reporting units in force; `rows` every Biểu 06 row of the period (derived
    and self-reported); `bases` what each source's figures rest on, "records" or
    "self_reported" (extractors.registry.basis_of); `missing_sources` the sources that did not
    land, with why; `empty_sources` those that landed no record at all: neither wins anything.
    A unit whose winning records source has none of its records while that source has records
    under no unit in force (`records.unit_unknown` findings) is withheld, never published as 0."""
    decisions = []
    new_findings: list[Finding] = []
    reported = {(r.source_id, r.unit_code) for r in rows[["source_id", "unit_code"]].drop_duplicates().itertuples()}
    severities = _severity_by_candidate(findings)
    unplaced = unplaced_records(findings)
    not_landed = {**{s: EMPTY for s in empty_sources}, **missing_sources}
    for unit in units[units["level"].isin(REPORTING_LEVELS)].itertuples():
        candidates = []
        for order, source in enumerate(settings.sources):
            covered = source.coverage(unit.unit_code, unit.level, period)
            if covered is None:
                continue
            landed = source.id not in not_landed
            candidates.append({
                "source_id": source.id, "basis": bases[source.id], "complete": covered, "landed": landed,
                "has_rows": (source.id, unit.unit_code) in reported, "order": order,
            })
        overlap = _overlap(candidates)
        decision = _choose(candidates, missing_sources, overlap)
        status, reason, held, note = "missing", None, None, None
        if overlap is not None:
            decision, held, note = _overlap_decision(unit, overlap, decision, not_landed, period, new_findings)
        if held is not None:
            status, reason = "critical", held
        elif decision is None:
            failed = [f"{c['source_id']}: {not_landed[c['source_id']]}" for c in candidates if not c["landed"]]
            reason = "; ".join(filter(None, [note, *failed])) or "không có báo cáo"
            partial = [c["source_id"] for c in candidates if c["landed"] and c["basis"] == RECORDS
                       and not c["complete"] and c["has_rows"]]
            if partial and _self_report_failed(candidates, missing_sources):
                reason += (f"; chỉ có hồ sơ từ phần mềm một cửa chưa đầy đủ ({', '.join(partial)}): không công bố "
                           "thay cho báo cáo tự lập của đơn vị")
            new_findings.append(finding(
                "completeness.missing_report",
                f"Đơn vị {unit.unit_code} ({unit.unit_name}) chưa có số liệu kỳ {period.label}: {reason}",
                period.start, period.end, unit_code=unit.unit_code, location=reason))
        else:
            basis = decision["basis"]
            status = severities.get((decision["source_id"], unit.unit_code), "ok")
            withheld = basis == RECORDS and not decision["has_rows"] and unplaced.get(decision["source_id"], 0) > 0
            if withheld:
                reason = (f"nguồn {decision['source_id']} không có hồ sơ nào của đơn vị nhưng có "
                          f"{unplaced[decision['source_id']]} hồ sơ chưa xác định được đơn vị: chưa công bố số 0")
                new_findings.append(finding(
                    "reconcile.unplaced_records",
                    f"Đơn vị {unit.unit_code} ({unit.unit_name}): {reason}; kiểm tra bảng mã đơn vị của nguồn "
                    f"(cảnh báo records.unit_unknown)", period.start, period.end, source_id=decision["source_id"],
                    unit_code=unit.unit_code, basis=basis, observed="0",
                    location=f"{decision['source_id']}: {unplaced[decision['source_id']]} hồ sơ chưa xác định đơn vị"))
                status = "critical"
            if status == "ok" and basis == "records" and not decision["complete"]:
                status = "warning"
                new_findings.append(finding(
                    "reconcile.incomplete_coverage",
                    f"Đơn vị {unit.unit_code} ({unit.unit_name}): chỉ có số liệu từ phần mềm một cửa chưa đầy đủ "
                    f"({decision['source_id']}), không có báo cáo tự lập", period.start, period.end,
                    source_id=decision["source_id"], unit_code=unit.unit_code, basis=basis))
            if status == "ok" and overlap is not None:
                status = "warning"  # the registry needs fixing: reconcile.overlapping_sources
            if not withheld:
                reason = None if status != "critical" else "có lỗi nghiêm trọng trong số liệu"
        decisions.append({
            "unit_code": unit.unit_code, "unit_name": unit.unit_name, "unit_level": unit.level,
            "source_id": decision["source_id"] if decision else None,
            "basis": decision["basis"] if decision else None,
            "coverage_complete": decision["complete"] if decision else None,
            "has_rows": decision["has_rows"] if decision else False,
            "quality_status": status, "reason": reason,
        })
    decided = pd.DataFrame(decisions)
    new_findings += disagreements(rows, decided, settings, period)
    chosen = decided.dropna(subset=["source_id"])[["unit_code", "source_id", "quality_status", "unit_name", "unit_level"]]
    merged = rows.merge(chosen, on=["unit_code", "source_id"], how="inner")
    merged["period_start"], merged["period_end"] = period.start, period.end
    # figures beside the form come from records only: rows of self-reported figures may lack them
    merged = merged.assign(**{f: pd.NA for f in BESIDE_FORM_FIGURES if f not in merged})
    columns = ["unit_code", "unit_name", "unit_level", "period_start", "period_end", "field_code", *FACT_FIGURES,
               "basis", "source_id", "quality_status"]
    return merged[columns].sort_values(["unit_code", "field_code"]).reset_index(drop=True), decided, new_findings


def disagreements(rows: pd.DataFrame, decided: pd.DataFrame, settings: Settings, period: Period) -> list[Finding]:
    """Where complete records won and the unit also reported figures itself, every figure that
    differs beyond the tolerance (max of the absolute and the relative one) is a finding: the
    published figure stays the records', the unit's own report is probably wrong."""
    tolerance_abs = float(settings.reconciliation.get("tolerance_abs", 0))
    tolerance_rel = float(settings.reconciliation.get("tolerance_rel", 0))
    winners = decided[(decided["basis"] == "records") & decided["coverage_complete"].fillna(False).astype(bool)]
    records = rows.merge(winners[["unit_code", "source_id"]], on=["unit_code", "source_id"])
    reported = rows[rows["basis"] == "self_reported"]
    both = records.merge(reported, on=["unit_code", "field_code"], suffixes=("", "_reported"))
    findings = []
    for row in both.itertuples(index=False):
        row = row._asdict()
        differing = {}
        for name in FIGURES:
            value, other = row[name], row[f"{name}_reported"]
            if pd.isna(value) or pd.isna(other):
                continue
            if abs(int(other) - int(value)) > max(tolerance_abs, tolerance_rel * abs(int(value))):
                differing[name] = (int(value), int(other))
        if differing:
            findings.append(finding(
                "reconcile.sources_disagree",
                f"Đơn vị {row['unit_code']}, lĩnh vực {row['field_code']}: số liệu tự báo cáo khác số liệu từ phần mềm "
                f"vượt ngưỡng cho phép: " + ", ".join(f"{k} {b} ≠ {a}" for k, (a, b) in differing.items()),
                period.start, period.end, source_id=row["source_id_reported"], unit_code=row["unit_code"],
                field_code=row["field_code"], basis="self_reported", columns=list(differing),
                observed=json.dumps({k: b for k, (a, b) in differing.items()}),
                expected=json.dumps({k: a for k, (a, b) in differing.items()}), location=row.get("landed_file_reported")))
    return findings


def _choose(candidates: list[dict], missing_sources: Collection[str] = (), overlap: list[dict] | None = None
            ) -> dict | None:
    """The winner by the rules of docs/reconciliation.md §3; with `overlap` (several complete
    records sources claiming the unit), complete records win only as `_overlap_decision` says."""
    landed = [c for c in candidates if c["landed"]]
    complete_records = [c for c in landed if c["basis"] == RECORDS and c["complete"]]
    if complete_records and overlap is None:
        return min(complete_records, key=lambda c: c["order"])
    reported = [c for c in landed if c["basis"] == SELF_REPORTED and c["has_rows"]]
    if reported:
        return min(reported, key=lambda c: c["order"])
    if _self_report_failed(candidates, missing_sources):
        return None  # partial records never stand in for a self-report that could not be fetched
    partial = [c for c in landed if c["basis"] == RECORDS and not c["complete"] and c["has_rows"]]
    return min(partial, key=lambda c: c["order"]) if partial else None


def _self_report_failed(candidates: list[dict], missing_sources: Collection[str]) -> bool:
    """A self-reported source of the unit failed (or was not extracted) in this run."""
    return any(c["basis"] == SELF_REPORTED and c["source_id"] in missing_sources for c in candidates)


def _overlap(candidates: list[dict]) -> list[dict] | None:
    """The records sources that each claim complete coverage of the unit for the period, when
    there are several (landed or not): a registry slip, e.g. departments moved to a new
    software and not excluded from the portal's `covers`."""
    claimants = [c for c in candidates if c["basis"] == RECORDS and c["complete"]]
    return claimants if len(claimants) > 1 else None


def _overlap_decision(unit, claimants: list[dict], fallback: dict | None, not_landed: dict[str, str],
                      period: Period, findings: list[Finding]) -> tuple[dict | None, str | None, str | None]:
    """Several complete records sources for one unit: the one that has the unit's records wins;
    none of them: 0 only when every one landed and has none, else the other rules (`fallback`);
    two with records: withheld (which one is right, or whether they are the same dossiers, cannot
    be told here). Always a `reconcile.overlapping_sources` finding naming them. Returns the
    decision, why the unit is withheld (or None), and what a missing unit's reason says first."""
    names = ", ".join(c["source_id"] for c in claimants)
    with_rows = [c for c in claimants if c["landed"] and c["has_rows"]]
    down = [f"{c['source_id']}: {not_landed[c['source_id']]}" for c in claimants if not c["landed"]]
    fix = "sửa covers trong config/sources.yaml để mỗi đơn vị chỉ thuộc một nguồn đầy đủ"
    decision, held, reason, severity = None, None, None, "warning"
    if len(with_rows) > 1:
        decision, severity = with_rows[0], "critical"
        held = reason = (f"nhiều nguồn cùng phụ trách đầy đủ đơn vị và cùng có hồ sơ của đơn vị ({names}): không xác định "
                  "được nguồn nào đúng nên chưa công bố")
        detail = f"{reason}; {fix}"
    elif with_rows:
        decision = with_rows[0]
        detail = (f"nhiều nguồn cùng khai báo phụ trách đầy đủ đơn vị ({names}); chỉ nguồn {decision['source_id']} có "
                  f"hồ sơ của đơn vị nên dùng số liệu của nguồn này; {fix}")
    elif not down:
        decision = min(claimants, key=lambda c: c["order"])
        detail = (f"nhiều nguồn cùng khai báo phụ trách đầy đủ đơn vị ({names}) và không nguồn nào có hồ sơ của đơn vị "
                  f"trong kỳ: số liệu bằng 0; {fix}")
    else:
        decision = fallback
        reason = (f"nhiều nguồn cùng khai báo phụ trách đầy đủ đơn vị ({names}), nguồn có hồ sơ không có hồ sơ nào "
                  f"của đơn vị và nguồn khác không lấy được ({'; '.join(down)}): không công bố số 0")
        detail = f"{reason}; {fix}"
    findings.append(finding(
        "reconcile.overlapping_sources", f"Đơn vị {unit.unit_code} ({unit.unit_name}): {detail}", period.start,
        period.end, severity=severity, source_id=(decision or claimants[0])["source_id"], unit_code=unit.unit_code,
        basis=RECORDS, location=f"config/sources.yaml covers: {names}"))
    return decision, held, reason


def unplaced_records(findings: list[Finding]) -> dict[str, int]:
    """Per records source, how many of its records are under no unit in force."""
    counts: dict[str, int] = {}
    for f in findings:
        if f.check_id == UNPLACED_CHECK and f.source_id is not None:
            counts[f.source_id] = counts.get(f.source_id, 0) + int(f.observed or 0)
    return counts


def _severity_by_candidate(findings: list[Finding]) -> dict[tuple[str, str], str]:
    worst: dict[tuple[str, str], str] = {}
    for f in findings:
        if f.unit_code is None or f.source_id is None or f.severity == "info":
            continue
        key = (f.source_id, f.unit_code)
        if SEVERITY_RANK[f.severity] < SEVERITY_RANK[worst.get(key, "info")]:
            worst[key] = f.severity
    return {k: ("critical" if v == "critical" else "warning") for k, v in worst.items()}
