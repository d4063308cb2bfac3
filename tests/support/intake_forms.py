"""A unit's downloaded Biểu 06 form filled as an officer fills it (openpyxl, so the formulas
keep no cached values: the extractor computes them), with an optional typing error."""
from __future__ import annotations

from pathlib import Path

import openpyxl

from publishing.workbook import COLUMN_OF, FIRST_DATA_ROW

FIRST_FIELD_ROW = FIRST_DATA_ROW + 3  # 1-based: the grand total, the level row, then the fields
TYPED = {"received_online": 10, "received_direct_postal": 15, "carried_over": 5, "resolved_early": 12,
         "resolved_on_time": 8, "resolved_late": 2, "pending_within_due": 7, "pending_overdue": 0, "returned_withdrawn": 1}

ROW_GROWS = ("received_online", "resolved_early")  # each field row differs, and every identity and the balance hold


def column(figure: str) -> int:
    """The 1-based column of a figure on the form."""
    return COLUMN_OF[figure] + 1


def fill(form: Path, out: Path, *, typo: tuple[str, int] | None = None, note: str | None = None) -> dict[str, int]:
    """Every field row filled with TYPED plus its index (so rows differ); `typo` types a value over
    the first field's figure (a total's formula replaced by a number). The sums per figure."""
    book = openpyxl.load_workbook(form)
    sheet = book.active
    totals = dict.fromkeys(TYPED, 0)
    r = FIRST_FIELD_ROW
    while sheet.cell(r, 1).value not in (None, ""):
        for figure, value in TYPED.items():
            typed = value + (r - FIRST_FIELD_ROW if figure in ROW_GROWS else 0)
            sheet.cell(r, column(figure)).value = typed
            totals[figure] += typed
        r += 1
    if typo is not None:
        figure, value = typo
        sheet.cell(FIRST_FIELD_ROW, column(figure)).value = value
    if note is not None:
        sheet.cell(r + 3, 2).value = note
    book.save(out)
    return totals
