"""Text from sources written into files people open in a spreadsheet program: a cell that starts
like a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) would run as one there, so in
CSV it gets a leading apostrophe, the spreadsheet's own mark for "this is text"; XLSX writers
are told to write strings as strings (`XLSX_TEXT_OPTIONS`)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TEXT_OPTIONS = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
_FORMULA_START = "^[=+\\-@\t\r]"


def inert(value):
    """The value as a CSV cell that no spreadsheet evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def inert_frame(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text:
        return frame
    return frame.assign(**{c: frame[c].map(inert) for c in text})


def inert_table(table: pa.Table) -> pa.Table:
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(i)
            risky = pc.match_substring_regex(column, _FORMULA_START)
            if pc.any(risky).as_py():
                marked = pc.binary_join_element_wise(pa.scalar("'", field.type), column, pa.scalar("", field.type))
                table = table.set_column(i, field, pc.if_else(risky, marked, column))
    return table
