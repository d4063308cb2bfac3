"""Reporting periods: a label like "2024-Q2" means different dates under different
cut-off conventions, so a period is always carried as its start and end dates."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tthc.form import quarter_label

class PeriodError(ValueError):
    """A period that cannot be run: not a quarter label, or a quarter that has not begun."""


CONVENTIONS = ("calendar_quarter", "decree_09_2019")
_LABEL = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # inclusive
    label: str

    def previous(self, convention: str) -> "Period":
        year, q = int(self.label[:4]), int(self.label[-1])
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
        return quarter(f"{year}-Q{q}", convention)

    def as_dict(self) -> dict:
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def quarter(label: str, convention: str) -> Period:
    """The quarter named by `label` under the province's cut-off convention."""
    match = _LABEL.fullmatch(label) if isinstance(label, str) else None  # fullmatch: no trailing newline
    if not match:
        raise PeriodError(f"period {label!r}: expected a quarter label like 2024-Q3 (year, '-Q', 1 to 4)")
    year, q = int(match.group(1)), int(match.group(2))
    last_month = 3 * q
    if convention == "calendar_quarter":
        start = date(year, last_month - 2, 1)
        end = _first_of_next_month(year, last_month) - timedelta(days=1)
    elif convention == "decree_09_2019":
        start = date(year - 1, 12, 15) if q == 1 else date(year, last_month - 3, 15)
        end = date(year, last_month, 14)
    else:
        raise ValueError(f"period convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    return Period(start, end, label)


# the lengths of period reports are made for, in months, and the months a period of that length
# may end in (calendar) or be cut off in (decree 09/2019: the 14th of that month)
PERIOD_KINDS = {"month": (1, range(1, 13)), "quarter": (3, (3, 6, 9, 12)), "half_year": (6, (6, 12)),
                "year": (12, (12,))}
PERIOD_KIND_LABELS = {"month": "tháng", "quarter": "quý", "half_year": "6 tháng", "year": "năm"}
ANY_CONVENTION = "any"  # offline: a period of either convention


def period_kind(start: date, end: date, convention: str) -> str | None:
    """Which report period (month, quarter, half-year, year) the dates are under the convention
    (`any`: under either), or None: a quarter 1/12–29/2, months 21st–20th match none."""
    conventions = CONVENTIONS if convention == ANY_CONVENTION else (convention,)
    for name in conventions:
        for kind, (months, last_months) in PERIOD_KINDS.items():
            if end.month not in last_months:
                continue
            if name == "calendar_quarter":
                first = date(end.year, end.month, 1)
                expected = (_months_before(first, months - 1), _first_of_next_month(end.year, end.month) - timedelta(days=1))
            elif name == "decree_09_2019":
                expected = (_months_before(date(end.year, end.month, 15), months), date(end.year, end.month, 14))
            else:
                raise ValueError(f"period convention {name!r}: expected one of {', '.join(CONVENTIONS)} or any")
            if (start, end) == expected:
                return kind
    return None


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, day.day)


def from_data_interval(interval_start: datetime, interval_end: datetime, timezone: str) -> Period:
    """The period of an Airflow data interval [start, end): the end is the exclusive boundary."""
    tz = ZoneInfo(timezone)
    start = interval_start.astimezone(tz).date()
    end = interval_end.astimezone(tz).date() - timedelta(days=1)
    if end < start:
        raise ValueError(f"data interval {interval_start} – {interval_end} is empty: the DAG needs a quarterly timetable")
    return Period(start, end, quarter_label(end))


def check_started(period: Period, today: date) -> Period:
    """A quarter that has not begun has nothing to extract: running it would publish a vintage of
    whatever the sources answer for the future, so it is refused."""
    if period.start > today:
        raise PeriodError(f"period {period.label} ({period.start} – {period.end}) has not begun "
                          f"(today is {today}): nothing to extract or publish")
    return period


def cron_for(convention: str) -> str:
    """Cron expression whose consecutive ticks bound the quarters of the convention."""
    if convention == "calendar_quarter":
        return "0 0 1 1,4,7,10 *"
    if convention == "decree_09_2019":
        return "0 0 15 3,6,9,12 *"
    raise ValueError(f"period convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")


def interval_end(period: Period, timezone: str) -> datetime:
    """The exclusive end of the period as an aware datetime: what Airflow's cron data-interval
    timetable infers the period from when a run is triggered for that instant."""
    return datetime.combine(period.end + timedelta(days=1), datetime.min.time(), ZoneInfo(timezone))


def _first_of_next_month(year: int, month: int) -> date:
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
