"""Typing-error diagnosis: which single figure of a Biểu 06 row was probably mistyped, and
what value would make every checkable identity of the row hold (domain.md §3).

A diagnosis never changes a figure: it is written into a finding for a person to confirm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tthc.form import BALANCE_IDENTITY, EXTRA_FIGURES, EXTRA_SUM_IDENTITIES, REPORTED_FIGURES, SUM_IDENTITIES

# the shapes of a slip of the keys, most common first (the rank of a candidate)
SHAPES = {
    "digit_changed": "gõ nhầm một chữ số",
    "digits_swapped": "đảo hai chữ số liền nhau",
    "digit_dropped": "thiếu một chữ số",
    "digit_doubled": "thừa một chữ số (gõ lặp)",
    "power_of_ten": "sai một bậc lũy thừa của 10",
    "off_by_thousand": "lệch đúng 1.000",
}
FORMULA_FOLLOWS = "formula_total_follows"
IDENTITIES = [(total, parts, True) for total, parts in SUM_IDENTITIES.items()] + [
    (total, parts, True) for total, parts in EXTRA_SUM_IDENTITIES.values()] + [
    (BALANCE_IDENTITY[0], BALANCE_IDENTITY[1], False)]
CORE_IDENTITIES = {(total, parts) for total, parts in SUM_IDENTITIES.items()} | {BALANCE_IDENTITY}
# a finding lists at most this many corrections; beyond, only those with evidence, and the count
MAX_CANDIDATES = 10
TOTAL_OF_PART = {part: total for total, parts in SUM_IDENTITIES.items() for part in parts}


def slip_shape(true: int, typed: int) -> str | None:
    """How `typed` can be `true` typed with one slip of the keys, or None."""
    if true == typed or true < 0 or typed < 0:
        return None
    t, s = str(true), str(typed)
    if len(t) == len(s):
        differ = [i for i in range(len(t)) if t[i] != s[i]]
        if len(differ) == 1:
            return "digit_changed"
        if len(differ) == 2 and differ[1] == differ[0] + 1 and t[differ[0]] == s[differ[1]] \
                and t[differ[1]] == s[differ[0]]:
            return "digits_swapped"
    if len(s) < len(t):
        if any(int(t[:i] + t[i + 1:]) == typed for i in range(len(t))):
            return "digit_dropped"
    if len(s) == len(t) + 1 and any(t[:i] + t[i] + t[i:] == s for i in range(len(t))):
        return "digit_doubled"
    for k in (1, 2, 3):
        if typed == true * 10 ** k or (true >= 10 ** k and typed == true // 10 ** k):
            return "power_of_ten"
    if abs(true - typed) == 1000:
        return "off_by_thousand"
    return None


def true_values_behind(typed: int) -> dict[int, str]:
    """Every value that `typed` can be a one-slip mistyping of, with the shape of the slip."""
    s = str(typed)
    found: set[int] = set()
    for i in range(len(s)):  # a digit changed
        found.update(int(s[:i] + d + s[i + 1:]) for d in "0123456789" if not (i == 0 and d == "0" and len(s) > 1))
    for i in range(len(s) - 1):  # two adjacent digits swapped
        found.add(int(s[:i] + s[i + 1] + s[i] + s[i + 2:]))
    for i in range(len(s) + 1):  # a digit dropped: put one back
        found.update(int(s[:i] + d + s[i:]) for d in "0123456789")
    for lead in range(1, 10):  # a leading digit dropped before zeros ("105" typed "5")
        for zeros in range(1, 3):
            found.add(int(str(lead) + "0" * zeros + s))
    for i in range(len(s) - 1):  # a digit doubled
        if s[i] == s[i + 1]:
            found.add(int(s[:i] + s[i + 1:]))
    for k in (1, 2, 3):
        if typed % 10 ** k == 0:
            found.add(typed // 10 ** k)
        found.update(typed * 10 ** k + r for r in range(10 ** k))
    found.update({typed + 1000, typed - 1000})
    shapes = {}
    for value in found:
        shape = slip_shape(value, typed) if value >= 0 else None
        if shape:
            shapes[value] = shape
    return shapes


@dataclass
class Candidate:
    correction: dict[str, int]  # column → the value that makes the row hold
    shape: str
    figure: str  # the figure thought mistyped (with a formula total, the total moves along)
    exact: bool = False  # fixed by an identity whose figures are all known, not only bounded by one
    corroborated: bool = False  # the corrected value is the sum of the row's level or field rows

    @property
    def rank_key(self) -> tuple:
        shape_rank = list(SHAPES).index(self.shape) if self.shape in SHAPES else len(SHAPES)
        return (not self.corroborated, len(self.correction), not self.exact, shape_rank,
                REPORTED_FIGURES.index(self.figure))


@dataclass
class Diagnosis:
    failing: list[str]  # totals of the identities that fail
    candidates: list[Candidate] = field(default_factory=list)
    # corrections found beyond those listed (a part missing: the identities only bound the figure)
    not_narrowed: int = 0
    missing: list[str] = field(default_factory=list)  # figures not reported that would narrow it

    @property
    def single(self) -> list[Candidate]:
        return [c for c in self.candidates if len(c.correction) == 1]

    @property
    def suggested_fix(self) -> dict[str, int] | None:
        """The correction to suggest: the one explanation found, or the only one the level or
        field rows corroborate."""
        if self.candidates and self.candidates[0].corroborated \
                and not any(c.corroborated for c in self.candidates[1:]):
            return dict(self.candidates[0].correction)
        if len(self.candidates) == 1 and not self.not_narrowed:
            return dict(self.candidates[0].correction)
        return None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) + self.not_narrowed > 1 and self.suggested_fix is None

    def ranked(self) -> list[dict[str, int]]:
        return [dict(c.correction) for c in self.candidates]


def identity_state(row: dict, total: str, parts: tuple[str, ...]) -> tuple[str, int | None]:
    """('holds' | 'breaks' | 'unchecked', gap): with unknown parts the identity still bounds
    the total from below (counts are non-negative)."""
    value = row.get(total)
    known = [row.get(p) for p in parts if row.get(p) is not None]
    if value is None:
        return "unchecked", None
    if len(known) == len(parts):
        gap = value - sum(known)
        return ("holds" if gap == 0 else "breaks"), gap
    if not known:
        return "unchecked", None
    gap = value - sum(known)
    return ("holds" if gap >= 0 else "breaks"), gap


def checked(row: dict) -> list[tuple[str, tuple[str, ...], bool]]:
    """The identities of `row`: the form's, and those of the optional figures it gives (without
    them they only repeat a bound of the form's own)."""
    given = {name for name in EXTRA_FIGURES if row.get(name) is not None}
    return [i for i in IDENTITIES if (i[0], i[1]) in CORE_IDENTITIES or given & {i[0], *i[1]}]


def holds(row: dict) -> bool:
    if any(v is not None and v < 0 for v in row.values()):
        return False
    return all(identity_state(row, total, parts)[0] != "breaks" for total, parts, _ in checked(row))


def diagnose(row: dict, children: dict[str, int] | None = None) -> Diagnosis:
    """Search the single-figure corrections of typing shape that make every checkable identity
    of `row` (figure → int or None) hold, then (ranked after them) the corrections of a part whose
    formula total followed the slip (the total moves by the same amount). `children` are
    the sums of the row's level or field rows, where all are given: a correction to that sum is
    corroborated and ranked first. At most MAX_CANDIDATES are kept: beyond, only the exact and
    corroborated ones, the others counted in `not_narrowed`."""
    figures = {name: (None if row.get(name) is None else int(row[name])) for name in REPORTED_FIGURES}
    failing = [total for total, parts, _ in checked(figures) if identity_state(figures, total, parts)[0] == "breaks"]
    diagnosis = Diagnosis(failing)
    if not failing:
        return diagnosis
    children = children or {}
    failing_sets = [set((t, *p)) for t, p, _ in checked(figures) if identity_state(figures, t, p)[0] == "breaks"]
    suspects = [name for name in REPORTED_FIGURES if figures[name] is not None and all(name in s for s in failing_sets)]
    for name in suspects:
        for value, (shape, exact) in _behind(figures, (name,)).items():
            diagnosis.candidates.append(Candidate({name: value}, shape, name, exact, children.get(name) == value))
    for part, total in TOTAL_OF_PART.items():
        if figures[part] is None or figures[total] is None \
                or identity_state(figures, total, SUM_IDENTITIES[total])[0] != "holds":
            continue
        for value, (shape, exact) in _behind(figures, (part, total)).items():
            moved = figures[total] + value - figures[part]
            diagnosis.candidates.append(Candidate({part: value, total: moved}, shape, part, exact,
                                                  children.get(part) == value))
    diagnosis.candidates.sort(key=lambda c: c.rank_key)
    if len(diagnosis.candidates) > MAX_CANDIDATES:
        kept = [c for c in diagnosis.candidates if c.exact or c.corroborated][:MAX_CANDIDATES]
        diagnosis.not_narrowed = len(diagnosis.candidates) - len(kept)
        diagnosis.candidates = kept
        involved = set().union(*failing_sets)
        diagnosis.missing = [name for name in REPORTED_FIGURES if name in involved and figures[name] is None]
    return diagnosis


def _behind(figures: dict, moved: tuple[str, ...]) -> dict[int, tuple[str, bool]]:
    """The values of `moved[0]` that are a slip away from the reported one and make the row hold
    when every figure of `moved` shifts by the same amount, each with its shape and whether it is
    exact. An identity that fails with every figure known fixes the shift at once (exact);
    otherwise every value behind the slip is tried."""
    typed = figures[moved[0]]
    identities = checked(figures)
    broken = [(total, *parts) for total, parts, _ in identities if identity_state(figures, total, parts)[0] == "breaks"]
    if any(not set(moved) & set(names) for names in broken):
        return {}
    for total, parts, _ in identities:
        state, gap = identity_state(figures, total, parts)
        if state != "breaks" or any(figures[n] is None for n in (total, *parts)):
            continue
        slope = sum(1 if n == total else -1 for n in moved if n in (total, *parts))
        if slope == 0 or gap % slope:
            continue
        value = typed - gap // slope
        shape = slip_shape(value, typed)
        shifted = {**figures, **{n: figures[n] + value - typed for n in moved}}
        return {value: (shape, True)} if shape and holds(shifted) else {}
    return {value: (shape, False) for value, shape in true_values_behind(typed).items()
            if holds({**figures, **{n: figures[n] + value - typed for n in moved}})}


def extra_digits_behind(typed: int) -> dict[int, int]:
    """Every value that `typed` can be with a run of digits typed in too many (600006 for 6,
    1200 for 12), with how many digits were extra: the slip behind a figure far beyond its
    references, whatever the identities say (a formula total follows the slip and still holds)."""
    s = str(typed)
    found: dict[int, int] = {}
    for length in range(1, len(s)):
        for i in range(len(s) - length + 1):
            value = int(s[:i] + s[i + length:])
            if value != typed:
                found.setdefault(value, len(s) - len(str(value)))
    return found


def describe_extra_digits(figure: str, typed: int, value: int, follows: dict[str, tuple[int, int]],
                          labels: dict[str, str]) -> str:
    """'Nhận trực tuyến (4) 600.006 có lẽ là 6: thừa chữ số (5 chữ số); …' with each formula total
    that moves along (total → (typed, corrected))."""
    extra = len(str(typed)) - len(str(value))
    text = (f"{labels.get(figure, figure)} {number_vi(typed)} có lẽ là {number_vi(value)}: thừa chữ số "
            f"({extra} chữ số)")
    for total, (was, now) in follows.items():
        text += f"; {labels.get(total, total)} tính theo công thức đổi theo, {number_vi(was)} thành {number_vi(now)}"
    return text


def number_vi(value: int | None) -> str:
    """A count written the Vietnamese way: 139907 → "139.907"."""
    return "không rõ" if value is None else f"{value:,}".replace(",", ".")


def describe(diagnosis: Diagnosis, row: dict, labels: dict[str, str]) -> str:
    """The diagnosis in the control officer's words."""
    def one(c: Candidate) -> str:
        text = f"{labels.get(c.figure, c.figure)} {number_vi(row.get(c.figure))} có lẽ là {number_vi(c.correction[c.figure])}"
        text += f" ({SHAPES.get(c.shape, c.shape)}"
        others = [k for k in c.correction if k != c.figure]
        if others:
            follows = labels.get(others[0], others[0])
            text += f"; {follows} tính theo công thức đổi theo thành {number_vi(c.correction[others[0]])}"
        return text + ")"

    if not diagnosis.candidates and diagnosis.not_narrowed:
        return (f"Không thu hẹp được: có {number_vi(diagnosis.not_narrowed)} cách sửa một số đều thỏa mãn các "
                "đẳng thức kiểm tra được" + _missing_vi(diagnosis, labels) + "; cần đối chiếu lại sổ sách")
    if not diagnosis.candidates:
        return "Không tìm thấy một lỗi gõ nhầm đơn lẻ nào giải thích được; cần đối chiếu lại sổ sách"
    more = (f"; ngoài ra {number_vi(diagnosis.not_narrowed)} cách sửa khác không thu hẹp được"
            + _missing_vi(diagnosis, labels)) if diagnosis.not_narrowed else ""
    if diagnosis.suggested_fix is not None:
        best = diagnosis.candidates[0]
        why = ", khớp tổng các dòng chi tiết" if best.corroborated else ""
        return ("Có thể gõ nhầm: " + one(best) + why + more
                + ". Số liệu giữ nguyên như báo cáo cho đến khi đơn vị xác nhận")
    shown = diagnosis.candidates[:5]
    hidden = len(diagnosis.candidates) - len(shown)
    return (f"Chưa xác định được số nào sai: có {number_vi(len(diagnosis.candidates) + diagnosis.not_narrowed)} khả năng, "
            "xếp theo mức độ thường gặp: "
            + "; ".join(one(c) + (" [khớp tổng các dòng chi tiết]" if c.corroborated else "") for c in shown)
            + (f"; và {hidden} khả năng khác" if hidden else "") + more + ". Cần gọi đơn vị xác nhận")


def _missing_vi(diagnosis: Diagnosis, labels: dict[str, str]) -> str:
    if not diagnosis.missing:
        return ""
    return " (thiếu số liệu: " + ", ".join(labels.get(m, m) for m in diagnosis.missing) + ")"
