"""Unit quarters: per source and unit, the quarter's totals against the unit's own last
quarters (median and MAD) and against its peers of the same level, the on-time rate and the
units without dossiers, and every figure against all the references it has (its records, its
history, its peers, the previous vintage: `figures.outlier`, which gates publishing); the GX
suite on that frame and the message of every check."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from tthc.checks import title
from tthc.config import Outliers
from tthc.findings import Finding
from tthc.form import FIGURE_LABELS, FIGURES, REPORTING_LEVELS, SUM_IDENTITIES
from tthc.periods import Period
from validations.diagnosis import describe_extra_digits, extra_digits_behind, number_vi
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


def unit_quarters(frame: pd.DataFrame, earlier: pd.DataFrame, units: pd.DataFrame, period: Period, *,
                  published: pd.DataFrame | None = None, outliers: Outliers | None = None) -> pd.DataFrame:
    """Per source and unit, the quarter's totals, their robust distance from the unit's own last
    quarters (median and MAD), the on-time rate against peers of the same level, and how far each
    figure stands beyond all its references (`with_outliers`; `published` the previous vintage's
    unit figures of the quarter)."""
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
    current = with_outliers(current, frame, earlier, published, outliers or Outliers())
    current[ROW_ID] = range(len(current))
    return current


# ---------------------------------------------------------------- outliers against every reference

# the references a figure is measured against, as a finding names them
REFERENCES = {"records": "hồ sơ trên phần mềm một cửa (chưa đầy đủ)", "history": "các quý trước của đơn vị",
              "peers": "các đơn vị cùng cấp", "vintage": "phiên bản đã công bố của kỳ"}


def outlier_references(current: pd.DataFrame, frame: pd.DataFrame, earlier: pd.DataFrame,
                       published: pd.DataFrame | None, outliers: Outliers) -> tuple[dict[str, np.ndarray], dict]:
    """Per reference, an array (unit quarter × figure) of the value each figure is measured
    against, NaN where the unit has no such reference; and what each rests on (quarters, peers,
    vintage) for the messages."""
    figures = list(FIGURES)
    shape = (len(current), len(figures))
    keys = list(zip(current["source_id"], current["unit_code"]))
    refs = {name: np.full(shape, np.nan) for name in REFERENCES}
    basis: dict = {"history_quarters": [0] * len(current), "peers": {}, "vintage": None}

    if "records_figures" in frame:
        sums: dict[tuple, dict[str, float]] = {}
        listed = frame[frame["records_figures"].notna()]
        for key, text in zip(zip(listed["source_id"], listed["unit_code"]), listed["records_figures"]):
            total = sums.setdefault(key, {})
            for name, value in json.loads(text).items():
                total[name] = total.get(name, 0) + value
        for i, key in enumerate(keys):
            if key in sums:
                refs["records"][i] = [sums[key].get(name, np.nan) for name in figures]

    known = [name for name in figures if name in earlier]
    if len(earlier) and known:
        past = earlier.groupby(["source_id", "unit_code", "period_end"])[known].sum(min_count=1).reset_index()
        past = past.sort_values("period_end").groupby(["source_id", "unit_code"]).tail(HISTORY_QUARTERS)
        grouped = past.groupby(["source_id", "unit_code"])
        medians, counts = grouped[known].median(), grouped.size()
        index = pd.MultiIndex.from_tuples(keys, names=["source_id", "unit_code"]) if keys else None
        if index is not None:
            columns = [figures.index(name) for name in known]
            refs["history"][:, columns] = medians.reindex(index)[known].astype("float64").to_numpy()
            basis["history_quarters"] = counts.reindex(index).fillna(0).astype(int).tolist()

    per_unit = current.groupby("unit_code")[figures].max()
    level_of = current.groupby("unit_code")["level"].first()
    for level, members in per_unit.groupby(level_of):
        if len(members) < outliers.min_peers:
            continue
        quantile = members.astype("float64").quantile(outliers.peer_quantile).to_numpy()
        rows = np.flatnonzero((current["level"] == level).to_numpy())
        refs["peers"][rows] = quantile
        basis["peers"][level] = len(members)

    if published is not None and len(published):
        latest = published[published["vintage"] == published["vintage"].max()] if "vintage" in published else published
        by_unit = latest.groupby("unit_code")[[n for n in figures if n in latest]].sum(min_count=1)
        columns = [figures.index(n) for n in by_unit.columns]
        refs["vintage"][:, columns] = by_unit.reindex(current["unit_code"]).astype("float64").to_numpy()
        basis["vintage"] = int(latest["vintage"].max()) if "vintage" in latest else None
    return refs, basis


def outlier_ratios(values: np.ndarray, refs: dict[str, np.ndarray], min_count: int) -> np.ndarray:
    """How many times each figure is its nearest reference (each floored at min_count): NaN
    where it has none, so a missing reference never gates."""
    ratio = np.full(values.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for reference in refs.values():
            ratio = np.fmin(ratio, values / np.maximum(reference, min_count))
    return ratio


def with_outliers(current: pd.DataFrame, frame: pd.DataFrame, earlier: pd.DataFrame,
                  published: pd.DataFrame | None, outliers: Outliers) -> pd.DataFrame:
    """`outlier_ratio`: the largest, over the unit quarter's figures, of how many times the figure
    is the nearest of its references; `outlier_ratio_mild` the same where it is not beyond
    factor_critical (the warning's column); `outlier_note` what a finding says (JSON)."""
    refs, basis = outlier_references(current, frame, earlier, published, outliers)
    values = current[list(FIGURES)].astype("float64").to_numpy()
    ratio = outlier_ratios(values, refs, outliers.min_count)
    known = ~np.isnan(ratio)
    worst = np.where(known.any(axis=1), np.where(known, ratio, -np.inf).max(axis=1), np.nan)
    current["outlier_ratio"] = worst
    current["outlier_ratio_mild"] = np.where(worst <= outliers.factor_critical, worst, np.nan)
    notes: list[str | None] = [None] * len(current)
    for i in np.flatnonzero(np.nan_to_num(worst, nan=0) > outliers.factor_warning):
        beyond = {}
        for j in np.argsort(-np.nan_to_num(ratio[i], nan=-1)):
            if not ratio[i, j] > outliers.factor_warning:
                break
            beyond[FIGURES[j]] = {"value": int(values[i, j]), "times": round(float(ratio[i, j]), 1),
                                  "references": {name: float(ref[i, j]) for name, ref in refs.items()
                                                 if not np.isnan(ref[i, j])}}
        source, unit, level = current.at[i, "source_id"], current.at[i, "unit_code"], current.at[i, "level"]
        rows = frame[(frame["source_id"] == source) & (frame["unit_code"] == unit)]
        figure = next(iter(beyond))
        slip = probable_slip(rows, figure, values[i, FIGURES.index(figure)],
                             {name: ref[i, FIGURES.index(figure)] for name, ref in refs.items()}, outliers,
                             _cell_reference(frame, earlier, source, unit, current, level))
        notes[i] = json.dumps({"beyond": beyond, "history_quarters": basis["history_quarters"][i],
                               "peers": basis["peers"].get(level), "quantile": outliers.peer_quantile,
                               "vintage": basis["vintage"], "slip": slip}, ensure_ascii=False)
    current["outlier_note"] = notes
    return current


def _cell_reference(frame: pd.DataFrame, earlier: pd.DataFrame, source: str, unit: str, current: pd.DataFrame,
                    level: str):
    """(field, figure) → what that cell usually holds: the unit's own median over its last
    quarters, else what software covering the unit partly counted in that cell this quarter,
    else the median of the same field and figure at the same source's units of the level."""
    def reference(field: str, name: str) -> float | None:
        if len(earlier) and "field_code" in earlier and name in earlier:
            own = earlier[(earlier["source_id"] == source) & (earlier["unit_code"] == unit)
                          & (earlier["field_code"] == field)][name].dropna()
            if len(own):
                return float(own.median())
        if "records_figures" in frame:
            counted = frame[(frame["source_id"] == source) & (frame["unit_code"] == unit)
                            & (frame["field_code"] == field)]["records_figures"].dropna()
            if len(counted) and name in json.loads(counted.iloc[0]):
                return float(json.loads(counted.iloc[0])[name])
        peers = set(current.loc[current["level"] == level, "unit_code"])
        same = frame[(frame["source_id"] == source) & (frame["field_code"] == field)
                     & frame["unit_code"].isin(peers) & (frame["unit_code"] != unit)][name].dropna()
        return float(same.median()) if len(same) else None
    return reference


def probable_slip(rows: pd.DataFrame, figure: str, unit_value: float, references: dict[str, float],
                  outliers: Outliers, cell_reference) -> dict | None:
    """The field row and cell that probably hold the slip behind an outlying unit figure, and the
    value it was meant to be: the row with the largest value of the figure (a formula total whose
    parts add up moves the suspicion to its largest part); among the values with some digits
    typed in too many (never 0), those that bring the unit's figure back within factor_warning of
    its references, the nearest to what that cell usually holds (then the one with more extra
    digits). None when none does."""
    rows = rows[rows[figure].notna()]
    if rows.empty:
        return None
    row = rows.loc[rows[figure].idxmax()]
    name = figure
    while name in SUM_IDENTITIES and all(pd.notna(row[p]) for p in SUM_IDENTITIES[name]) \
            and row[name] == sum(row[p] for p in SUM_IDENTITIES[name]):
        name = max(SUM_IDENTITIES[name], key=lambda p: row[p])
    typed = int(row[name])
    usual = cell_reference(row["field_code"], name)
    best, best_rank = None, (np.inf, 0)
    for value, extra in extra_digits_behind(typed).items():
        if value == 0:  # a count of 0 is typed as 0, not with digits around it
            continue
        corrected = unit_value - typed + value
        ratios = [corrected / max(ref, outliers.min_count) for ref in references.values() if not np.isnan(ref)]
        if not ratios or min(ratios) > outliers.factor_warning:
            continue
        distance = abs(np.log1p(value) - np.log1p(usual)) if usual is not None else \
            float(np.mean([abs(np.log1p(corrected) - np.log1p(ref)) for ref in references.values() if not np.isnan(ref)]))
        if (distance, -extra) < best_rank:
            best, best_rank = value, (distance, -extra)
    if best is None:
        return None
    follows = {total: (int(row[total]), int(row[total]) - typed + best) for total, parts in SUM_IDENTITIES.items()
               if name in parts and pd.notna(row[total])
               and all(pd.notna(row[p]) for p in parts) and row[total] == sum(row[p] for p in parts)}
    landed, line = plain(row.get("landed_file")), plain(row.get("row"))
    return {"field_code": plain(row["field_code"]), "figure": name, "typed": typed, "value": int(best),
            "usual": usual, "follows": {k: list(v) for k, v in follows.items()},
            "location": f"{landed}, dòng {line}" if landed and line else landed}


# ---------------------------------------------------------------- the suite and its messages

@dataclass
class UnitMessage:
    """What a check says about one unit quarter: the detail after its title, and what the finding
    names beyond the unit (a field, narrowed figures, a suggested fix, where)."""
    detail: str
    expected: dict | None = None
    suggested_fix: dict | None = None
    columns: list[str] | None = None
    observed: dict | None = None
    field_code: str | None = None
    location: str | None = None


def _history(row: pd.Series, outliers: Outliers) -> UnitMessage:
    note = json.loads(row["history_note"])
    detail = (f"{note['figure']} {int(note['value']):,} so với trung vị {note['median']:,.0f} của "
              f"{note['quarters']} quý trước (MAD {note['mad']:,})").replace(",", ".")
    return UnitMessage(detail, {note["figure"]: note["median"]})


def _peers(row: pd.Series, outliers: Outliers) -> UnitMessage:
    return UnitMessage((f"tỷ lệ đúng hạn {100 * row['on_time_rate']:.1f}% so với trung vị "
                        f"{100 * row['peer_median']:.1f}% của các đơn vị cấp {row['level']}").replace(".", ","))


def _on_time_all(row: pd.Series, outliers: Outliers) -> UnitMessage:
    return UnitMessage(f"{int(row['resolved_total'])} hồ sơ đã giải quyết, không hồ sơ nào quá hạn")


def _no_dossiers(row: pd.Series, outliers: Outliers) -> UnitMessage:
    return UnitMessage("mọi chỉ tiêu bằng 0")


def _reference_words(name: str, value: float, note: dict) -> str:
    if name == "history":
        return f"trung vị {note['history_quarters']} quý trước {number_vi(round(value))}"
    if name == "peers":
        return (f"mức {round(100 * note['quantile'])}% của {note['peers']} đơn vị cùng cấp "
                f"{number_vi(round(value))}")
    if name == "vintage":
        return f"phiên bản {note['vintage']} đã công bố {number_vi(round(value))}"
    return f"{REFERENCES[name]} {number_vi(round(value))}"


def _outlier(row: pd.Series, outliers: Outliers) -> UnitMessage:
    note = json.loads(row["outlier_note"])
    parts = []
    for name, item in note["beyond"].items():
        times = f"{item['times']:,.0f}".replace(",", ".")
        parts.append(f"{FIGURE_LABELS[name]} {number_vi(item['value'])} gấp {times} lần mốc gần nhất ("
                     + ", ".join(_reference_words(k, v, note) for k, v in item["references"].items()) + ")")
    detail = "; ".join(parts)
    beyond = {name: item["value"] for name, item in note["beyond"].items()}
    expected = {name: item["references"] for name, item in note["beyond"].items()}
    slip = note["slip"]
    critical = row["outlier_ratio"] > outliers.factor_critical
    after = ("Chưa công bố số liệu của đơn vị cho đến khi đơn vị xác nhận hoặc sửa" if critical
             else "Số liệu vẫn công bố kèm cảnh báo; cần gọi đơn vị xác nhận")
    if slip is None:
        return UnitMessage(f"{detail}. Không tìm thấy lỗi gõ thừa chữ số nào đưa số liệu về gần các mốc; cần đối chiếu "
                           f"sổ sách. {after}", expected, columns=list(beyond), observed=beyond)
    follows = {total: tuple(pair) for total, pair in slip["follows"].items()}
    detail += (f". Lĩnh vực {slip['field_code']}: "
               + describe_extra_digits(slip["figure"], slip["typed"], slip["value"], follows, FIGURE_LABELS)
               + f". {after}")
    fix = {slip["figure"]: slip["value"], **{total: now for total, (was, now) in follows.items()}}
    observed = {slip["figure"]: slip["typed"], **{total: was for total, (was, now) in follows.items()}}
    return UnitMessage(detail, expected, suggested_fix=fix, columns=list(fix), observed=observed,
                       field_code=slip["field_code"], location=slip["location"])


# check id → message builder: (the unit quarter's row, the outlier thresholds) → UnitMessage
UNIT_MESSAGES = {
    "plausibility.history": _history,
    "plausibility.peers": _peers,
    "plausibility.on_time_all": _on_time_all,
    "completeness.no_dossiers": _no_dossiers,
    "figures.outlier": _outlier,
}


def unit_quarters_suite(outliers: Outliers | None = None) -> gx.ExpectationSuite:
    """Per source and unit, the quarter's totals against the unit's own history and its peers,
    and every figure against all its references (critical beyond factor_critical, a warning
    beyond factor_warning)."""
    outliers = outliers or Outliers()
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
    add(gxe.ExpectColumnValuesToBeBetween(column="outlier_ratio", max_value=outliers.factor_critical),
        "figures.outlier", list(FIGURES), severity="critical")
    add(gxe.ExpectColumnValuesToBeBetween(column="outlier_ratio_mild", max_value=outliers.factor_warning),
        "figures.outlier", list(FIGURES), severity="warning")
    return check_messages(suite, UNIT_MESSAGES)


def unit_findings(quarters: pd.DataFrame, failed: list[Failed], period: Period,
                  outliers: Outliers | None = None) -> list[Finding]:
    outliers = outliers or Outliers()
    findings = []
    for check_id, severity, columns, ids in failed:
        for row_id in ids:
            row = quarters.iloc[row_id]
            message = UNIT_MESSAGES[check_id](row, outliers)
            columns_named = message.columns or columns
            observed = message.observed or {c: plain(row[c]) for c in columns_named}
            findings.append(Finding(
                check_id, severity,
                f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: {message.detail}",
                period.start, period.end, source_id=row["source_id"], unit_code=row["unit_code"],
                field_code=message.field_code, columns=columns_named, observed=json.dumps(observed, ensure_ascii=False),
                expected=json.dumps(message.expected, ensure_ascii=False) if message.expected else None,
                suggested_fix=message.suggested_fix, location=message.location))
    return findings


def validate_unit_quarters(session: GxSession, frame: pd.DataFrame, earlier: pd.DataFrame, units: pd.DataFrame,
                           period: Period, *, published: pd.DataFrame | None = None,
                           outliers: Outliers | None = None) -> tuple[list[Finding], pd.DataFrame]:
    """The plausibility, outlier and completeness checks of a quarter's prepared Biểu 06 rows."""
    quarters = unit_quarters(frame, earlier, units, period, published=published, outliers=outliers)
    failed = session.validate(quarters, unit_quarters_suite(outliers))
    return unit_findings(quarters, failed, period, outliers), quarters
