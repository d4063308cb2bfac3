"""`tthc explain`: the province's Biểu 06 against a vendor's rule set, unit by unit, from the
dossiers of the period's latest run (transforms/explain.py does the work)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tthc.config import Settings, var_dir
from tthc.form import FIGURE_LABELS
from tthc.periods import Period
from tthc.rules import RuleSet



class NoRunYet(Exception):
    pass


def latest_dossiers(period: Period) -> Path:
    """The canonical dossiers of the period's most recent run that got that far."""
    runs = sorted((p for p in (var_dir() / "runs" / period.label).glob("*/dossiers.parquet")),
                  key=lambda p: p.stat().st_mtime)
    if not runs:
        raise NoRunYet(f"{period.label}: no run of this quarter under {var_dir() / 'runs'} has canonical dossiers; "
                       f"run `tthc run --period {period.label}` first")
    return runs[-1]


def sources_to_explain(settings: Settings, against: RuleSet, chosen: list[str] | None) -> list[str] | None:
    """The sources asked for; else those read with the vendor's preset; else every source (None)."""
    if chosen:
        known = {s.id for s in settings.sources}
        unknown = sorted(set(chosen) - known)
        if unknown:
            raise ValueError(f"unknown sources {unknown}; the sources are {sorted(known)}")
        return chosen
    return [s.id for s in settings.sources if s.spec.get("preset") == against.name] or None


def _n(value: int) -> str:
    """A count as Vietnamese write it: 1.234."""
    return f"{int(value):,}".replace(",", ".")


def figure_label(figure: str) -> str:
    return FIGURE_LABELS[figure]


def as_text(moves: pd.DataFrame, period: Period, province: RuleSet, against: RuleSet, names: dict[str, str]) -> str:
    """Vietnamese, for the provincial office: each unit, each figure that differs, the rules that move it."""
    lines = [f"Biểu 06 kỳ {period.label} ({period.start:%d/%m/%Y} – {period.end:%d/%m/%Y}): định nghĩa "
             f"'{province.name}' so với '{against.name}'"]
    if moves.empty:
        lines.append("Không có hồ sơ nào được xếp khác nhau: số liệu như nhau.")
        return "\n".join(lines) + "\n"
    for unit, of_unit in moves.groupby("unit_code", sort=True):
        lines.append(f"\n{unit}  {names.get(unit, '')}".rstrip())
        for figure, rows in of_unit.groupby("figure", sort=False):
            first = rows.iloc[0]
            difference = int(first.against_value) - int(first.province_value)
            lines.append(f"  {figure_label(figure)}: {province.name} {_n(first.province_value)}, "
                         f"{against.name} {_n(first.against_value)} (chênh {'+' if difference > 0 else ''}{_n(difference)})")
            for row in rows.itertuples():
                lines.append(f"    {row.dossiers_in - row.dossiers_out:+d}  {row.rule_label} [{row.rule}]: "
                             f"thêm {row.dossiers_in}, bớt {row.dossiers_out}; ví dụ {row.example_dossiers}")
    return "\n".join(lines) + "\n"
