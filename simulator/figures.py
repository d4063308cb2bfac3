"""Biểu 06 figures of the communes: the true ones, and the ones their workbooks show.

The true figures are derived here from all of a commune's true dossiers, paper-only ones
included, by the rules of docs/canonical-model.md. This is ground truth, so it is written
independently of the pipeline's own derivation: a bug there must not hide itself by
reappearing here. The written figures are the true ones with the seeded defects of
docs/sample-sources.md, each recorded as it is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tthc.form import FIGURES, SUM_IDENTITIES
from tthc.periods import Period
from simulator.dossiers import DAY, Dossiers, ONLINE, seconds, unit_in
from simulator.workbooks import FIRST_FIELD_ROW, WorkbookSpec, column_letter
from simulator.world import SPREADSHEETS, World

COLUMN = {name: i for i, name in enumerate(FIGURES)}
TOTAL_COLUMNS = {COLUMN[total]: [COLUMN[p] for p in parts] for total, parts in SUM_IDENTITIES.items()}
TOTAL_OF_PART = {part: total for total, parts in TOTAL_COLUMNS.items() for part in parts}

MISSING_REPORT_SHARE = 0.04
TYPING_ERROR_SHARE = 0.03
TEXT_NUMBER_WORKBOOK_SHARE = 0.20
TEXT_NUMBER_CELL_SHARE = 0.10
CARRIED_OVER_MISMATCH_SHARE = 0.02

MISTAKES = {  # kind: (description, weight)
    "digit_changed": ("a digit changed", 3),
    "digit_dropped": ("a digit dropped", 2),
    "digit_doubled": ("a digit doubled", 2),
    "digits_swapped": ("two adjacent digits swapped", 2),
    "times_ten": ("typed ×10", 1),
    "divided_by_ten": ("typed ÷10", 1),
    "plus_1000": ("off by +1000", 1),
    "minus_1000": ("off by −1000", 1),
}


def derive(received, due, finished, status, online, key, n_keys: int, period: Period) -> np.ndarray:
    """Figures (n_keys × FIGURES) of the dossiers grouped by `key`, for one period."""
    start = seconds(period.start)
    end = seconds(period.end) + DAY  # the end day is whole
    taken_on = (status != 1) & (status != 3)
    received_in = taken_on & (received >= start) & (received < end)
    finished_in = taken_on & (finished >= start) & (finished < end)
    resolved = finished_in & ((status == 9) | (status == 10))
    finished_day, due_day = finished // DAY, due // DAY
    pending = taken_on & (received < end) & (finished >= end)
    # paused (waiting for documents or fees): the clock is stopped, within due whatever the due date
    paused = (status == 5) | (status == 6)
    overdue = (due_day <= (end // DAY - 1)) & ~paused

    def count(mask):
        return np.bincount(key[mask], minlength=n_keys)

    parts = {
        "received_online": count(received_in & online),
        "received_direct_postal": count(received_in & ~online),
        "carried_over": count(taken_on & (received < start) & (finished >= start)),
        "resolved_early": count(resolved & (finished_day < due_day)),
        "resolved_on_time": count(resolved & (finished_day == due_day)),
        "resolved_late": count(resolved & (finished_day > due_day)),
        "pending_within_due": count(pending & ~overdue),
        "pending_overdue": count(pending & overdue),
        "returned_withdrawn": count(finished_in & ((status == 7) | (status == 8))),
    }
    for total, names in SUM_IDENTITIES.items():
        parts[total] = sum(parts[name] for name in names)
    return np.stack([parts[name] for name in FIGURES], axis=1).astype(np.int64)


@dataclass
class Spreadsheets:
    figures: list[dict] = field(default_factory=list)  # one per commune × quarter × field
    defects: list[dict] = field(default_factory=list)
    workbooks: list[WorkbookSpec] = field(default_factory=list)


def commune_spreadsheets(world: World, dossiers: Dossiers, periods: list[Period], rng: np.random.Generator) -> Spreadsheets:
    """True and written figures of every commune in force, quarter by quarter, and the
    workbooks to write. The first quarter of each unit system has no previous quarter to
    disagree with, so it gets no carried_over_mismatch."""
    units = world.units
    communes = world.level_ids("commune")
    commune_pos = np.full(len(units), -1)
    commune_pos[communes] = np.arange(communes.size)
    fields = world.commune_fields
    field_pos = np.full(len(world.fields), -1)
    field_pos[fields] = np.arange(fields.size)

    def of_communes(after_reform: bool):
        """The communes' dossiers in a quarter (a handed-over one at its successor after the reform), keyed."""
        unit = unit_in(dossiers, after_reform)
        mine = np.flatnonzero((commune_pos[unit] >= 0) & (field_pos[dossiers.field] >= 0))
        return dossiers.take(mine), commune_pos[unit[mine]] * fields.size + field_pos[dossiers.field[mine]]

    keyed = {after: of_communes(after) for after in (False, True)}
    result = Spreadsheets()
    field_codes = world.fields["code"].to_numpy()[fields].tolist()
    field_names = world.fields["name"].to_numpy()[fields].tolist()
    records = units.to_dict("records")
    commune_units = units.iloc[communes]
    seen_systems = set()
    for period in periods:
        d, key = keyed[period.start >= world.reform_date]
        true = derive(d.received, d.due, d.finished, d.status, d.channel == ONLINE, key,
                      communes.size * fields.size, period).reshape(communes.size, fields.size, len(FIGURES))
        in_force = commune_units[(commune_units["valid_from"] <= period.start) & (commune_units["valid_to"] >= period.end)]
        system = bool(in_force["old"].iloc[0]) if len(in_force) else None
        first_of_system = system not in seen_systems
        seen_systems.add(system)
        for uid in in_force.sort_values("unit_code").index:
            report = _Report(world.province_name, records[uid], bool(world.formula_totals[uid]), period,
                             true[commune_pos[uid]], field_codes, field_names)
            report.seed(rng, first_of_system)
            result.figures.extend(report.rows())
            result.defects.extend(report.defects)
            if report.filed:
                result.workbooks.append(report.spec)
    for i, defect in enumerate(result.defects, start=1):
        defect["defect_id"] = f"D{i:05d}"
    return result


class _Report:
    """One commune's Biểu 06 for one quarter, as the commune filled it in."""

    def __init__(self, province_name: str, unit: dict, formula_totals: bool, period: Period, true: np.ndarray,
                 field_codes: list[str], field_names: list[str]):
        self.province_name, self.period, self.true = province_name, period, true
        self.field_codes, self.field_names = field_codes, field_names
        self.unit_code, self.unit_name, self.valid_from = unit["unit_code"], unit["unit_name"], unit["valid_from"]
        self.formula_totals = formula_totals
        self.reported = true.copy()
        self.typed_over: set[tuple[int, int]] = set()
        self.texts: dict[tuple[int, int], str] = {}
        self.defects: list[dict] = []
        self.filed = True
        self.path = f"spreadsheets/{period.label}/Bieu06_{self.unit_code}.xlsx"

    def seed(self, rng: np.random.Generator, first_of_system: bool) -> None:
        missing, typing, text, mismatch = rng.random(4)
        if missing < MISSING_REPORT_SHARE:
            self.filed = False
            self._defect("missing_report", detail=f"no workbook filed for {self.period.label}")
            return
        protected: set[tuple[int, int]] = set()
        if mismatch < CARRIED_OVER_MISMATCH_SHARE and not first_of_system:
            protected |= self._carried_over_mismatch(rng)
        if typing < TYPING_ERROR_SHARE:
            protected |= self._typing_error(rng, protected)
        self._follow_formulas()
        if text < TEXT_NUMBER_WORKBOOK_SHARE:
            self._text_numbers(rng, protected)

    def _cell(self, row: int, col: int) -> str:
        return f"{column_letter(col)}{FIRST_FIELD_ROW + row}"

    def _is_formula(self, row: int, col: int) -> bool:
        return self.formula_totals and col in TOTAL_COLUMNS and (row, col) not in self.typed_over

    def _defect(self, kind: str, row: int | None = None, col: int | None = None, reported="", detail: str = "") -> None:
        self.defects.append({
            "defect_id": "", "kind": kind, "source_id": SPREADSHEETS, "period": self.period.label,
            "unit_code": self.unit_code,
            "field_code": "" if row is None else self.field_codes[row],
            "column": "" if col is None else FIGURES[col],
            "true_value": "" if col is None else int(self.true[row, col]),
            "reported_value": reported, "detail": detail,
        })

    def _carried_over_mismatch(self, rng: np.random.Generator) -> set[tuple[int, int]]:
        row = int(rng.integers(len(self.field_codes)))
        carried, total = COLUMN["carried_over"], COLUMN["received_total"]
        value = int(self.true[row, carried])
        size = int(rng.integers(1, max(3, value // 10 + 2)))
        delta = size if value < size or rng.random() < 0.5 else -size
        self.reported[row, carried] += delta
        if not self.formula_totals:
            self.reported[row, total] += delta
        self._defect(
            "carried_over_mismatch", row, carried, int(self.reported[row, carried]),
            f"cell {self._cell(row, carried)} differs from the previous quarter's pending_total "
            f"{value}; received_total {self._cell(row, total)} moves with it to {self.true[row, total] + delta}",
        )
        return {(row, carried), (row, total)}

    def _typing_error(self, rng: np.random.Generator, protected: set[tuple[int, int]]) -> set[tuple[int, int]]:
        cells = [(r, c) for r in range(len(self.field_codes)) for c in range(len(FIGURES)) if (r, c) not in protected]
        nonzero = [cell for cell in cells if self.reported[cell] > 0]
        row, col = (nonzero or cells)[rng.integers(len(nonzero or cells))]
        value = int(self.reported[row, col])
        new, kind = mistype(value, rng)
        notes = [f"{MISTAKES[kind][0]} in cell {self._cell(row, col)}"]
        if self._is_formula(row, col):
            self.typed_over.add((row, col))
            notes.append("typed over its formula")
        elif col in TOTAL_OF_PART and self._is_formula(row, TOTAL_OF_PART[col]):
            notes.append(f"the formula total {FIGURES[TOTAL_OF_PART[col]]} follows")
        self.reported[row, col] = new
        self._defect("typing_error", row, col, new, "; ".join(notes))
        return {(row, col)}

    def _follow_formulas(self) -> None:
        if not self.formula_totals:
            return
        for total, parts in TOTAL_COLUMNS.items():
            for row in range(len(self.field_codes)):
                if (row, total) not in self.typed_over:
                    self.reported[row, total] = self.reported[row, parts].sum()

    def _text_numbers(self, rng: np.random.Generator, protected: set[tuple[int, int]]) -> None:
        cells = [(r, c) for r in range(len(self.field_codes)) for c in range(len(FIGURES))
                 if (r, c) not in protected and not self._is_formula(r, c)]
        if not cells:
            return
        chosen = [cell for cell in cells if rng.random() < TEXT_NUMBER_CELL_SHARE] or [cells[rng.integers(len(cells))]]
        for row, col in chosen:
            text = as_text(int(self.reported[row, col]), rng)
            self.texts[(row, col)] = text
            self._defect("text_number", row, col, text, f"cell {self._cell(row, col)} holds the text {text!r}")

    def rows(self) -> list[dict]:
        out = []
        for r, (code, name) in enumerate(zip(self.field_codes, self.field_names)):
            rec = {
                "unit_code": self.unit_code, "unit_name": self.unit_name, "unit_valid_from": self.valid_from,
                "period": self.period.label, "period_start": self.period.start, "period_end": self.period.end,
                "field_code": code, "field_name": name,
                "filed": self.filed, "workbook": self.path if self.filed else None,
                "sheet_row": FIRST_FIELD_ROW + r if self.filed else None, "formula_totals": self.formula_totals,
            }
            rec.update({f"true_{name}": int(self.true[r, c]) for c, name in enumerate(FIGURES)})
            rec.update({f"reported_{name}": int(self.reported[r, c]) if self.filed else None for c, name in enumerate(FIGURES)})
            out.append(rec)
        return out

    @property
    def spec(self) -> WorkbookSpec:
        return WorkbookSpec(
            path=self.path, province_name=self.province_name, unit_code=self.unit_code,
            unit_name=self.unit_name, period_label=self.period.label, period_start=self.period.start,
            period_end=self.period.end,
            field_names=self.field_names,
            values=self.reported.tolist(), formula_totals=self.formula_totals,
            typed_over=sorted(self.typed_over), texts=sorted(self.texts.items()),
        )


def mistype(value: int, rng: np.random.Generator) -> tuple[int, str]:
    """`value` as people mistype it, and how; never the value itself, never negative."""
    digits = str(value)
    swappable = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1] and not (i == 0 and digits[1] == "0")]
    possible = {
        "digit_changed": True,
        "digit_dropped": len(digits) >= 2,
        "digit_doubled": value > 0,
        "digits_swapped": bool(swappable),
        "times_ten": value > 0,
        "divided_by_ten": value >= 10,
        "plus_1000": value >= 100,
        "minus_1000": value >= 1000,
    }
    kinds = [k for k, ok in possible.items() if ok]
    weights = np.array([MISTAKES[k][1] for k in kinds], dtype=float)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    i = int(rng.integers(len(digits)))
    if kind == "digit_changed":
        choices = [c for c in "0123456789" if c != digits[i] and not (i == 0 and c == "0" and len(digits) > 1)]
        new = int(digits[:i] + choices[rng.integers(len(choices))] + digits[i + 1:])
    elif kind == "digit_dropped":
        new = int(digits[:i] + digits[i + 1:])
    elif kind == "digit_doubled":
        new = int(digits[:i] + digits[i] + digits[i:])
    elif kind == "digits_swapped":
        j = swappable[rng.integers(len(swappable))]
        new = int(digits[:j] + digits[j + 1] + digits[j] + digits[j + 2:])
    elif kind == "times_ten":
        new = value * 10
    elif kind == "divided_by_ten":
        new = value // 10
    elif kind == "plus_1000":
        new = value + 1000
    else:
        new = value - 1000
    return new, kind


def as_text(value: int, rng: np.random.Generator) -> str:
    """A correct figure the way it ends up stored as text in a hand-made sheet."""
    if value >= 1000:
        grouped = f"{value:,}".replace(",", ".")
        styles = (grouped, grouped.replace(".", ". ", 1), f" {grouped} ")
    else:
        styles = (str(value), f" {value} ", f"{value} ")
    return styles[rng.integers(len(styles))]
