"""Counts as Vietnamese people write them (domain.md §7): "140.683" and "140. 683" are
140683; a count is a whole number, so "12,5" or "12.5" is an error to report, not to round."""
from __future__ import annotations

import math
import re

_GROUPED = re.compile(r"^\d{1,3}(?:\.\s?\d{3})+$")
_PLAIN = re.compile(r"^\d+$")


class NotACount(ValueError):
    """The value cannot be a count of dossiers; the message says what was expected."""


def parse_count(value) -> int | None:
    """A non-negative whole number from a cell value, None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise NotACount(f"{value!r} is a boolean, expected a whole number of dossiers")
    if isinstance(value, int):
        return _non_negative(value, value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise NotACount(f"{value!r} is not a whole number of dossiers")
        return _non_negative(int(value), value)
    text = str(value).replace("\u00a0", " ").strip()
    if text in ("", "-"):
        return None
    negative = text.startswith("-")
    digits = text[1:].strip() if negative else text
    if _PLAIN.match(digits) or _GROUPED.match(digits):
        number = int(re.sub(r"[.\s]", "", digits))
        return _non_negative(-number if negative else number, value)
    raise NotACount(f"{value!r} is not a whole number of dossiers (expected digits, thousands grouped with '.')")


def _non_negative(number: int, raw) -> int:
    if number < 0:
        raise NotACount(f"{raw!r} is negative, expected a count of dossiers")
    return number
