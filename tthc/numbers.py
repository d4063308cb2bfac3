"""Counts as people write them (domain.md §7): "140.683" is 140683; a count is a whole number, so
"12,5" or "12.5" is an error to report, not to round.

Real reports and pages also print counts in other forms (issue 17): thousands grouped with ','
by English-locale spreadsheets ("509,772"), stray spaces ("140. 683", "140 683"), leading zeros
("09"). Those are read, and the reading is said (`read_count`'s note) so that it can be checked.
Small numbers written as words ("tám") and approximations ("gần 27.000", "trên 7.600") are not
counts: they are refused with their own error (`ApproximateCount`), never read as a figure."""
from __future__ import annotations

import math
import re
import unicodedata
from typing import NamedTuple

_GROUPED = re.compile(r"^\d{1,3}(?:\.\d{3})+$")
_PLAIN = re.compile(r"^\d+$")
# thousands grouped with '.', ',' or a space, with stray spaces around the separators
_GROUPED_LOOSE = re.compile(r"^\d{1,3}(?:\s*([.,])\s*\d{3})+$|^\d{1,3}(?:\s+\d{3})+$")
_APPROXIMATE = ("gần", "trên", "hơn", "khoảng", "xấp xỉ", "dưới", "chừng", "ước", "tới", "~", "≈", ">", "<", "+")
_NUMBER_WORDS = ("không", "một", "hai", "ba", "bốn", "tư", "năm", "lăm", "sáu", "bảy", "tám", "chín", "mười",
                 "mươi", "trăm", "nghìn", "ngàn", "triệu", "linh", "lẻ", "mốt")


class NotACount(ValueError):
    """The value cannot be a count of dossiers; the message says what was expected."""


class ApproximateCount(NotACount):
    """An approximation ("gần 27.000") or a number in words ("tám"): a figure, not a count."""

    def __init__(self, message: str, kind: str, raw):
        super().__init__(message)
        self.kind, self.raw = kind, raw  # kind: "approximate" or "words"


class Reading(NamedTuple):
    value: int | None
    note: str | None = None  # how a non-standard form was read (a key of READINGS); None for the standard forms


# the non-standard forms read, in English (logs, manifests) and Vietnamese (findings)
READINGS = {"leading_zeros": ("has leading zeros", "có chữ số 0 ở đầu"),
            "comma_grouping": ("has thousands grouped with ','", "phân cách hàng nghìn bằng dấu phẩy"),
            "spaces": ("has spaces inside the number", "có dấu cách trong số"),
            "space_grouping": ("has thousands grouped with spaces", "phân cách hàng nghìn bằng dấu cách")}
APPROXIMATIONS_VI = {"approximate": "số ước lượng, không phải số đếm: cần số chính xác",
                     "words": "số viết bằng chữ, không phải số đếm: cần ghi bằng chữ số"}


def reading_en(raw, reading: Reading) -> str:
    return f"{raw!r} {READINGS[reading.note][0]}, read as {reading.value}"


def reading_vi(raw, reading: Reading) -> str:
    return f"{str(raw)!r} {READINGS[reading.note][1]}, đã đọc là {reading.value}"


def parse_count(value) -> int | None:
    """A non-negative whole number from a cell value, None for an empty cell."""
    return read_count(value).value


def read_count(value) -> Reading:
    """A cell as a count and, when it was written in a form other than plain digits or thousands
    grouped with '.', how it was read."""
    if value is None:
        return Reading(None, None)
    if isinstance(value, bool):
        raise NotACount(f"{value!r} is a boolean, expected a whole number of dossiers")
    if isinstance(value, int):
        return Reading(_non_negative(value, value), None)
    if isinstance(value, float):
        if math.isnan(value):
            return Reading(None, None)
        if not value.is_integer():
            raise NotACount(f"{value!r} is not a whole number of dossiers")
        return Reading(_non_negative(int(value), value), None)
    text = str(value).replace("\u00a0", " ").replace("\u202f", " ").strip()
    if text in ("", "-"):
        return Reading(None, None)
    negative = text.startswith("-")
    digits = text[1:].strip() if negative else text
    if _PLAIN.match(digits) or _GROUPED.match(digits):
        number = int(digits.replace(".", ""))
        note = "leading_zeros" if _PLAIN.match(digits) and len(digits) > 1 and digits.startswith("0") else None
        return Reading(_non_negative(-number if negative else number, value), note)
    loose = _GROUPED_LOOSE.match(digits)
    if loose:
        number = int(re.sub(r"[.,\s]", "", digits))
        how = {",": "comma_grouping", ".": "spaces", None: "space_grouping"}
        return Reading(_non_negative(-number if negative else number, value), how[loose.group(1)])
    words = unicodedata.normalize("NFC", text).lower()
    if any(words.startswith(w) for w in _APPROXIMATE) and re.search(r"\d", words):
        raise ApproximateCount(f"{value!r} is an approximate figure, not a count: the exact count is needed",
                               "approximate", value)
    if words and all(w.strip(",.") in _NUMBER_WORDS for w in words.split()):
        raise ApproximateCount(f"{value!r} is a number written in words, not a count in digits: "
                               "type the count in digits", "words", value)
    raise NotACount(f"{value!r} is not a whole number of dossiers (expected digits, thousands grouped with '.')")


def _non_negative(number: int, raw) -> int:
    if number < 0:
        raise NotACount(f"{raw!r} is negative, expected a count of dossiers")
    return number
