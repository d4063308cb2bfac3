"""Unit quarters: per source and unit, the quarter's totals against the unit's own last
quarters (median and MAD) and against its peers of the same level, the on-time rate and the
units without dossiers; the GX suite on that frame and the message of every check."""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from tthc.checks import title
from tthc.findings import Finding
from tthc.form import FIGURES, REPORTING_LEVELS
from tthc.periods import Period
from validations.gx import ROW_ID, Failed, GxSession, adder, check_messages, gx, gxe, plain

HISTORY_QUARTERS = 8  # the unit's last quarters a change is measured against
HISTORY_MIN_QUARTERS = 4
HISTORY_K = 5.0  # robust z beyond which a change is implausible
HISTORY_FLOOR_REL, HISTORY_FLOOR_ABS = 0.5, 20
PEER_MIN_RESOLVED = 30
ON_TIME_ALL_MIN = 50


def history_since(period: Period, convention: str) -> date:
    """The earliest period end of the earlier figures the checks of `period` use (continuity
    with the previous period, plausibility against the unit's last HISTORY_QUARTERS)."""
    previous = period.previous(convention)
    return previous.start.replace(year=previous.start.year - HISTORY_QUARTERS // 4 - 1)


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
    resolved = current["resolved_total"]
    rate = np.where(resolved >= PEER_MIN_RESOLVED, on_time / resolved.replace(0, np.nan), np.nan)
    current["on_time_rate"] = rate
    current["peer_z"] = np.nan
    for _level, members in current.groupby("level"):
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


# ---------------------------------------------------------------- the suite and its messages

def _history(row: pd.Series) -> tuple[str, dict | None]:
    note = json.loads(row["history_note"])
    detail = (f"{note['figure']} {int(note['value']):,} so với trung vị {note['median']:,.0f} của "
              f"{note['quarters']} quý trước (MAD {note['mad']:,})").replace(",", ".")
    return detail, {note["figure"]: note["median"]}


def _peers(row: pd.Series) -> tuple[str, dict | None]:
    return (f"tỷ lệ đúng hạn {100 * row['on_time_rate']:.1f}% so với trung vị "
            f"{100 * row['peer_median']:.1f}% của các đơn vị cấp {row['level']}").replace(".", ","), None


def _on_time_all(row: pd.Series) -> tuple[str, dict | None]:
    return f"{int(row['resolved_total'])} hồ sơ đã giải quyết, không hồ sơ nào quá hạn", None


def _no_dossiers(row: pd.Series) -> tuple[str, dict | None]:
    return "mọi chỉ tiêu bằng 0", None


# check id → message builder: the unit quarter's row → (detail, expected figures or None)
UNIT_MESSAGES = {
    "plausibility.history": _history,
    "plausibility.peers": _peers,
    "plausibility.on_time_all": _on_time_all,
    "completeness.no_dossiers": _no_dossiers,
}


def unit_quarters_suite() -> gx.ExpectationSuite:
    """Per source and unit, the quarter's totals against the unit's own history and its peers."""
    suite = gx.ExpectationSuite(name="unit_quarters")
    add = adder(suite)
    add(gxe.ExpectColumnValuesToBeBetween(column="history_excess", max_value=0), "plausibility.history",
        ["received_total", "resolved_total"])
    add(gxe.ExpectColumnValuesToBeBetween(column="peer_z", min_value=-4, max_value=4), "plausibility.peers",
        ["resolved_early", "resolved_on_time", "resolved_total"])
    add(gxe.ExpectColumnValuesToBeInSet(column="on_time_all", value_set=[False]), "plausibility.on_time_all",
        ["resolved_total", "resolved_late", "pending_overdue"])
    add(gxe.ExpectColumnValuesToBeInSet(column="no_dossiers", value_set=[False]), "completeness.no_dossiers",
        list(FIGURES))
    return check_messages(suite, UNIT_MESSAGES)


def unit_findings(quarters: pd.DataFrame, failed: list[Failed], period: Period) -> list[Finding]:
    findings = []
    for check_id, severity, columns, ids in failed:
        for row_id in ids:
            row = quarters.iloc[row_id]
            observed = {c: plain(row[c]) for c in columns}
            detail, expected = UNIT_MESSAGES[check_id](row)
            findings.append(Finding(
                check_id, severity, f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: {detail}",
                period.start, period.end, source_id=row["source_id"], unit_code=row["unit_code"], columns=columns,
                observed=json.dumps(observed, ensure_ascii=False), expected=json.dumps(expected) if expected else None))
    return findings


def validate_unit_quarters(session: GxSession, frame: pd.DataFrame, earlier: pd.DataFrame, units: pd.DataFrame,
                           period: Period) -> tuple[list[Finding], pd.DataFrame]:
    """The plausibility and completeness checks of a quarter's prepared Biểu 06 rows."""
    quarters = unit_quarters(frame, earlier, units, period)
    return unit_findings(quarters, session.validate(quarters, unit_quarters_suite()), period), quarters
