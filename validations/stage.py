"""The validate stage of a quarterly run: every suite, the typing-error diagnosis, the findings
file, GX results and Data Docs, and the call-back list, all in the run's folder."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tthc.findings import Finding
from tthc.form import FIGURES, REPORTING_LEVELS
from tthc.landing import RECORDS, landed_path
from tthc.periods import Period
from validations.callback import write_callback_list
from tthc.checks import CHECKS, title
from warehouse.history import HISTORY_QUARTERS, earlier_figures
from validations.records import RECORD_CHECKS, record_counts
from validations.run import ROW_ID, GxSession, RollupGroup, _plain, diagnosis_findings, prepare_rows, \
    rollup_findings, row_findings
from validations.suites import bieu06_suite, dossier_records_suite, reconciled_figures_suite, unit_quarters_suite

HISTORY_MIN_QUARTERS = 4
HISTORY_K = 5.0  # robust z beyond which a change is implausible
HISTORY_FLOOR_REL, HISTORY_FLOOR_ABS = 0.5, 20
PEER_MIN_RESOLVED = 30
ON_TIME_ALL_MIN = 50


def validate_run(ctx, rows: pd.DataFrame) -> tuple[list[Finding], dict]:
    """All checks of a run on its Biểu 06 rows and its dossier records."""
    settings, period = ctx.settings, ctx.period
    fields = [f["code"] for f in settings.fields]
    units = ctx.units_in_force
    session = GxSession(ctx.path("gx_data_docs"))
    previous = period.previous(settings.period_convention)
    since = previous.start.replace(year=previous.start.year - HISTORY_QUARTERS // 4 - 1)
    earlier = earlier_figures(ctx.warehouse_url, period.start, since)
    valid_from = dict(zip(units["unit_code"], units["valid_from"]))
    if len(earlier):
        earlier = earlier[[valid_from.get(u) is not None and s >= valid_from[u]
                           for u, s in zip(earlier["unit_code"], earlier["period_start"])]]

    frame = prepare_rows(_with_continuity(rows, earlier, previous), units_in_force=units["unit_code"],
                         field_codes=fields, period=period, convention=settings.period_convention)
    bases = json.loads(ctx.path("sources.json").read_text(encoding="utf-8"))["bases"]
    frame = _with_crosscheck(frame, settings, units, period, bases)
    findings = row_findings(frame, session.validate(frame, bieu06_suite()), period)
    diagnosed, _ = diagnosis_findings(frame, period)
    findings += diagnosed
    findings += _continuity_unchecked(frame, earlier, previous, period)
    findings += rollup_findings(_total_rows(ctx, frame), period)

    counts = record_counts(ctx.path("dossiers.parquet"), period, fields, ctx.path("ids_under_several_units.parquet"))
    counts[ROW_ID] = range(len(counts))
    findings += _record_findings(counts, session.validate(counts, dossier_records_suite()), period)

    quarters = unit_quarters(frame, earlier, units, period)
    findings += _unit_findings(quarters, session.validate(quarters, unit_quarters_suite()), period)

    session.write_results(ctx.path("gx_results.json"))
    write_callback_list(findings, units, ctx.run_dir)
    return findings, {"rows": len(frame), "record_units": len(counts), "unit_quarters": len(quarters),
                      "history_rows": len(earlier), "data_docs": str(ctx.path("gx_data_docs") / "index.html")}


class AuditFailed(RuntimeError):
    """The reconciled figures break the published contract: nothing is loaded or published."""


def audit_reconciled(ctx, reconciled: pd.DataFrame) -> dict:
    """Runs the reconciled-figures suite on the rows that load and publish would take (units not
    quarantined); raises AuditFailed naming every failing unit, field and check."""
    rows = reconciled[reconciled["quality_status"] != "critical"]
    frame = prepare_rows(rows, units_in_force=ctx.units_in_force["unit_code"],
                         field_codes=[f["code"] for f in ctx.settings.fields], period=ctx.period,
                         convention=ctx.settings.period_convention)
    session = GxSession()
    failed = session.validate(frame, reconciled_figures_suite())
    session.write_results(ctx.path("gx_results_reconciled.json"))
    problems = [f for f in row_findings(frame, failed, ctx.period) if f.severity == "critical"]
    if problems:
        listed = "; ".join(dict.fromkeys(f"{f.check_id} unit {f.unit_code} field {f.field_code}" for f in problems))
        raise AuditFailed(f"{len(problems)} reconciled rows of {ctx.period.label} break the published contract "
                          f"(reconciled_figures suite, {ctx.path('gx_results_reconciled.json')}): {listed}")
    return {"audited_rows": len(frame)}


# ---------------------------------------------------------------- continuity

def _with_continuity(rows: pd.DataFrame, earlier: pd.DataFrame, previous: Period) -> pd.DataFrame:
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


def _continuity_unchecked(frame: pd.DataFrame, earlier: pd.DataFrame, previous: Period, period: Period) -> list[Finding]:
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


# ---------------------------------------------------------------- records vs self-reported

def _with_crosscheck(frame: pd.DataFrame, settings, units: pd.DataFrame, period: Period,
                     bases: dict[str, str]) -> pd.DataFrame:
    """Self-reported rows against the figures of a records source whose coverage of the unit is
    incomplete: records are then a lower bound, so only a reported figure below them (beyond
    the tolerance) is a finding. Complete coverage is compared by reconcile
    (`reconcile.sources_disagree`). `bases`: what each source's figures rest on (sources.json)."""
    tolerance_abs = float(settings.reconciliation.get("tolerance_abs", 0))
    tolerance_rel = float(settings.reconciliation.get("tolerance_rel", 0))
    levels = dict(zip(units["unit_code"], units["level"]))
    partial = {s.id for s in settings.sources if bases.get(s.id) == RECORDS}
    records = frame[frame["basis"] == "records"]
    records = records[[settings.source(s).coverage(u, levels.get(u, ""), period) is False if s in partial else False
                       for s, u in zip(records["source_id"], records["unit_code"])]]
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


# ---------------------------------------------------------------- workbook total rows

def _total_rows(ctx, frame: pd.DataFrame) -> list[RollupGroup]:
    """The "Tổng cộng" row of each workbook against its field rows (landed, kept aside by canonicalize)."""
    sources = json.loads(ctx.path("sources.json").read_text(encoding="utf-8"))["landed"]
    groups = []
    for source_id, info in sources.items():
        path = landed_path(ctx.var, ctx.period, source_id, info["files"])
        if "is_total" not in pq.read_schema(path).names:  # only workbooks have total rows
            continue
        landed = pq.read_table(path).to_pandas()
        landed["source_id"], landed["basis"], landed["landed_file"] = source_id, "self_reported", landed["file"]
        for _, workbook in landed.groupby(["file", "sheet"]):
            totals = workbook[workbook["is_total"]]
            for _, total in totals.iterrows():
                groups.append(RollupGroup(total, workbook[~workbook["is_total"]], True, "rollup.total_row"))
    return groups


# ---------------------------------------------------------------- dossier records

def _record_findings(counts: pd.DataFrame, failed, period: Period) -> list[Finding]:
    findings = []
    for check_id, severity, columns, ids in failed:
        column = RECORD_CHECKS[check_id][0]
        for row_id in ids:
            row = counts.iloc[row_id]
            examples = ", ".join(list(row[f"ex_{column}"])[:5])
            findings.append(Finding(
                check_id, severity,
                f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: "
                f"{int(row[column])} trên {int(row['records'])} hồ sơ; ví dụ: {examples}",
                period.start, period.end, source_id=row["source_id"], unit_code=row["unit_code"], basis="records",
                columns=columns, observed=str(int(row[column])), expected="0",
                location=f"dossiers.parquet, {row['source_id']}: {examples}"))
    return findings


# ---------------------------------------------------------------- plausibility and completeness

def unit_quarters(frame: pd.DataFrame, earlier: pd.DataFrame, units: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per source and unit, the quarter's totals, their robust distance from the unit's own last
    quarters (median and MAD), the on-time rate against peers of the same level."""
    levels = dict(zip(units["unit_code"], units["level"]))
    current = frame.groupby(["source_id", "unit_code"], dropna=False)[list(FIGURES)].sum(min_count=1).reset_index()
    current["level"] = current["unit_code"].map(levels)
    current = current[current["level"].isin(REPORTING_LEVELS)].reset_index(drop=True)
    if len(earlier):
        past = earlier.groupby(["source_id", "unit_code", "period_end"])[["received_total", "resolved_total"]].sum()
        past = past.reset_index().sort_values("period_end").groupby(["source_id", "unit_code"]).tail(HISTORY_QUARTERS)
    else:
        past = pd.DataFrame(columns=["source_id", "unit_code", "period_end", "received_total", "resolved_total"])
    excess = np.full(len(current), np.nan)
    notes: list[str | None] = [None] * len(current)
    history = {k: g for k, g in past.groupby(["source_id", "unit_code"])}
    for i, (source, unit) in enumerate(zip(current["source_id"], current["unit_code"])):
        quarters = history.get((source, unit))
        if quarters is None or len(quarters) < HISTORY_MIN_QUARTERS:
            continue
        worst, note = -np.inf, None
        for name in ("received_total", "resolved_total"):
            value = current.at[i, name]
            series = quarters[name].astype(float)
            median = float(series.median())
            mad = float((series - median).abs().median()) * 1.4826
            allowed = max(HISTORY_K * mad, HISTORY_FLOOR_REL * median, HISTORY_FLOOR_ABS)
            if pd.isna(value):
                continue
            distance = abs(value - median) - allowed
            if distance > worst:
                worst = distance
                note = json.dumps({"figure": name, "value": int(value), "median": median, "mad": round(mad, 1),
                                   "quarters": len(series)})
        excess[i] = worst if worst > -np.inf else np.nan
        notes[i] = note
    current["history_excess"] = excess
    current["history_note"] = notes
    on_time = current["resolved_early"] + current["resolved_on_time"]
    rate = np.where(current["resolved_total"] >= PEER_MIN_RESOLVED, on_time / current["resolved_total"].replace(0, np.nan), np.nan)
    current["on_time_rate"] = rate
    current["peer_z"] = np.nan
    for level, members in current.groupby("level"):
        rates = members["on_time_rate"].dropna()
        if len(rates) < 8:
            continue
        median = rates.median()
        mad = (rates - median).abs().median() * 1.4826
        if mad > 0:
            current.loc[rates.index, "peer_z"] = (rates - median) / mad
            current.loc[rates.index, "peer_median"] = median
    current["on_time_all"] = ((current["resolved_total"] >= ON_TIME_ALL_MIN) & (on_time == current["resolved_total"])
                              & (current["pending_overdue"].fillna(0) == 0)).fillna(False).astype(bool)
    current["no_dossiers"] = (current[list(FIGURES)].fillna(0).sum(axis=1) == 0) & current[list(FIGURES)].notna().any(axis=1)
    current[ROW_ID] = range(len(current))
    return current


def _unit_findings(quarters: pd.DataFrame, failed, period: Period) -> list[Finding]:
    findings = []
    for check_id, severity, columns, ids in failed:
        for row_id in ids:
            row = quarters.iloc[row_id]
            observed = {c: _plain(row[c]) for c in columns}
            expected = None
            if check_id == "plausibility.history":
                note = json.loads(row["history_note"])
                detail = (f"{note['figure']} {int(note['value']):,} so với trung vị {note['median']:,.0f} của "
                          f"{note['quarters']} quý trước (MAD {note['mad']:,})").replace(",", ".")
                expected = {note["figure"]: note["median"]}
            elif check_id == "plausibility.peers":
                detail = (f"tỷ lệ đúng hạn {100 * row['on_time_rate']:.1f}% so với trung vị "
                          f"{100 * row['peer_median']:.1f}% của các đơn vị cấp {row['level']}").replace(".", ",")
            elif check_id == "plausibility.on_time_all":
                detail = f"{int(row['resolved_total'])} hồ sơ đã giải quyết, không hồ sơ nào quá hạn"
            else:
                detail = "mọi chỉ tiêu bằng 0"
            findings.append(Finding(
                check_id, severity, f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: {detail}",
                period.start, period.end, source_id=row["source_id"], unit_code=row["unit_code"], columns=columns,
                observed=json.dumps(observed, ensure_ascii=False), expected=json.dumps(expected) if expected else None))
    return findings
