"""The true dossiers of the province, simulated quarter by quarter as numpy arrays.

Times are whole seconds of local time (Asia/Ho_Chi_Minh) since 1970-01-01, without zone, the
way the canonical model stores them; a dossier not finished carries NEVER, which compares
after every real moment so that "not finished by t" is simply `finished > t`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from tthc.periods import Period
from simulator.world import NOT_SERVED, PORTAL, SERVED_BY, World

DAY = 86_400
NEVER = np.iinfo(np.int64).max

QUARTER_VOLUME = 150_000
SEASON = {1: 0.92, 2: 1.0, 3: 1.0, 4: 1.08}  # Tết slows the first quarter
LEVEL_SHARES_BEFORE_REFORM = {"department": 0.35, "district": 0.15, "commune": 0.50}
LEVEL_SHARES_AFTER_REFORM = {"department": 0.45, "commune": 0.55}

REFUSED_SHARE = 0.01
WITHDRAWN_SHARE = 0.03
POSTAL_SHARE = 0.03
PAID_ONLINE_SHARE = 0.35
RETURNED_SHARE = 0.75  # status 10 (result handed back) rather than 9
# shares of in-person dossiers sent without a channel: about 2 % of the portal's records
MISSING_CHANNEL_PORTAL = 0.045
MISSING_CHANNEL_AGENCY = 0.02
PENDING_STATUSES = np.array([2, 4, 5, 6], dtype=np.int16)
PENDING_STATUS_WEIGHTS = np.array([0.15, 0.55, 0.20, 0.10])

IN_PERSON, ONLINE, POSTAL = 0, 1, 2  # index into tthc.model.CHANNELS

MORNING_START, MORNING_SECONDS = 7 * 3600 + 1800, 4 * 3600
AFTERNOON_START, AFTERNOON_SECONDS = 13 * 3600 + 1800, 3 * 3600 + 1800


@dataclass
class Dossiers:
    """One entry per true dossier; `period` is the index of the quarter it was received in."""

    unit: np.ndarray
    field: np.ndarray
    procedure: np.ndarray
    period: np.ndarray
    received: np.ndarray
    due: np.ndarray
    finished: np.ndarray
    returned: np.ndarray
    updated: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    channel_missing_portal: np.ndarray  # in person, sent to the portal without KenhThucHien
    channel_missing_agency: np.ndarray
    fee: np.ndarray
    paid_online: np.ndarray
    payment_gateway: np.ndarray  # DuocThanhToanTrucTuyen: 1 national portal, 2 local gateway
    result_documents: np.ndarray  # variant of the result list, see RESULT_VARIANTS
    digitised: np.ndarray
    served_by: np.ndarray  # index into world.SERVED_BY
    # the unit a dossier pending at an old unit on the reform was handed over to (-1: none), and when
    handed_to: np.ndarray
    handed_at: np.ndarray

    def __len__(self) -> int:
        return len(self.unit)

    def take(self, index: np.ndarray) -> "Dossiers":
        return Dossiers(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


# (first document digitised, second document present, second digitised) per variant;
# variant 0 is a dossier without results.
RESULT_VARIANTS = ((None, False, False), (0, False, False), (1, False, False),
                   (0, True, False), (0, True, True), (1, True, False), (1, True, True))


def seconds(moment: date | datetime) -> int:
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def simulate(world: World, periods: list[Period], horizon: datetime, scale: float, rng: np.random.Generator) -> Dossiers:
    parts = [_quarter(world, i, period, horizon, scale, rng) for i, period in enumerate(periods)]
    return Dossiers(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in Dossiers.__dataclass_fields__})


def _categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One draw per row of `weights` (rows need not be normalised)."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), weights.shape[1] - 1)


def _working_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """A moment of office hours (7:30–11:30, 13:30–17:00) as seconds after midnight."""
    w = rng.integers(0, MORNING_SECONDS + AFTERNOON_SECONDS, n)
    return np.where(w < MORNING_SECONDS, MORNING_START + w, AFTERNOON_START + w - MORNING_SECONDS)


def _days(day_numbers: np.ndarray) -> np.ndarray:
    return day_numbers.astype("datetime64[D]")


def _day_numbers(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype(np.int64)


def _quarter(world: World, index: int, period: Period, horizon: datetime, scale: float, rng: np.random.Generator) -> Dossiers:
    units = world.units
    after_reform = period.start >= world.reform_date
    shares = LEVEL_SHARES_AFTER_REFORM if after_reform else LEVEL_SHARES_BEFORE_REFORM
    active = ((units["valid_from"] <= period.start) & (units["valid_to"] >= period.end)).to_numpy()
    total = QUARTER_VOLUME * scale * SEASON[int(period.label[-1])]
    unit_parts = []
    for level, share in shares.items():
        ids = np.flatnonzero(active & (units["level"] == level).to_numpy())
        if ids.size == 0:
            continue
        weights = world.volume[ids] * rng.lognormal(0.0, 0.1, ids.size)
        counts = rng.multinomial(int(round(total * share)), weights / weights.sum())
        unit_parts.append(np.repeat(ids, counts))
    unit = np.concatenate(unit_parts)
    n = unit.size

    field = _categorical(rng, world.field_weights[unit])
    slot = _categorical(rng, world.procedure_weights[field])
    procedure = world.procedure_ids[field, slot]
    processing_days = world.procedures["days"].to_numpy()[procedure]

    days = np.arange(np.datetime64(period.start), np.datetime64(period.end + timedelta(days=1)))
    days = days[np.is_busday(days)]
    received_day = days[rng.integers(0, days.size, n)]
    time_of_day = _working_seconds(rng, n)
    received = _day_numbers(received_day) * DAY + time_of_day
    due_day = np.busday_offset(received_day, processing_days)
    due = _day_numbers(due_day) * DAY + time_of_day

    r = rng.random(n)
    refused = r < REFUSED_SHARE
    withdrawn = (r >= REFUSED_SHARE) & (r < REFUSED_SHARE + WITHDRAWN_SHARE)
    resolving = ~(refused | withdrawn)
    u = rng.random(n)
    shares_of_unit = world.outcome_shares[unit]
    early = resolving & (u < shares_of_unit[:, 0])
    on_time = resolving & ~early & (u < shares_of_unit[:, 0] + shares_of_unit[:, 1])
    late = resolving & ~early & ~on_time

    span = np.busday_count(received_day, due_day)
    early_day = np.busday_offset(received_day, (rng.random(n) * span).astype(np.int64))
    late_by = np.where(rng.random(n) < 0.85, rng.geometric(0.3, n), rng.geometric(0.04, n))
    late_day = np.busday_offset(due_day, late_by)
    withdrawn_day = np.busday_offset(received_day, rng.integers(0, processing_days + 6))
    finished_day = np.select([early, on_time, late, withdrawn], [early_day, due_day, late_day, withdrawn_day], received_day)
    finished = _day_numbers(finished_day) * DAY + _working_seconds(rng, n)
    finished = np.where(refused, received + rng.integers(600, 10_800, n), finished)
    finished = np.where(finished <= received, received + rng.integers(600, 7_200, n), finished)

    # dossiers still pending at a district or an old commune when the reform takes effect are handed
    # over, with their id and dates, to a successor on its first morning (docs/sample-sources.md)
    old = units["old"].to_numpy()[unit]
    reform = seconds(world.reform_date)
    handed_to = _successors(world, unit, field, old & (finished >= reform))
    handed = handed_to >= 0
    handed_at = np.where(handed, reform + MORNING_START + rng.integers(0, 3600, n), NEVER)

    horizon_s = seconds(horizon)
    pending = finished > horizon_s
    finished = np.where(pending, NEVER, finished)
    done = ~pending

    status = np.full(n, 9, dtype=np.int16)
    status[refused] = 3
    status[withdrawn & done] = np.where(rng.random(int((withdrawn & done).sum())) < 0.65, 7, 8)
    status[pending] = rng.choice(PENDING_STATUSES, int(pending.sum()), p=PENDING_STATUS_WEIGHTS)
    resolved = resolving & done

    safe_finished = np.where(done, finished, received)
    returned_day = np.busday_offset(_days(safe_finished // DAY), rng.integers(0, 4, n), roll="forward")
    returned = np.maximum(_day_numbers(returned_day) * DAY + _working_seconds(rng, n), safe_finished + 600)
    returned = np.where(old & ~handed & (returned >= reform), safe_finished + 600, returned)
    handed_back = resolved & (rng.random(n) < RETURNED_SHARE) & (returned <= horizon_s)
    status[handed_back] = 10
    returned = np.where(handed_back, returned, NEVER)

    last_event = np.where(handed_back, returned, safe_finished)
    updated = np.where(
        pending,
        received + (rng.random(n) * (horizon_s - received)).astype(np.int64),
        last_event + rng.integers(60, 3600, n),
    )
    updated = np.minimum(updated, horizon_s)

    c = rng.random(n)
    online_share = world.online_share[unit]
    channel = np.where(c < online_share, ONLINE, np.where(c < online_share + POSTAL_SHARE, POSTAL, IN_PERSON)).astype(np.int8)
    in_person = channel == IN_PERSON

    fee = world.procedures["fee"].to_numpy()[procedure].astype(np.int64)
    paid_online = (fee > 0) & ~refused & (rng.random(n) < PAID_ONLINE_SHARE)
    gateway = np.where(rng.random(n) < 0.6, 1, 2).astype(np.int8)

    digitised_share = world.digitised_share[unit]
    first_digitised = rng.random(n) < digitised_share
    second = rng.random(n) < 0.25
    second_digitised = rng.random(n) < digitised_share
    variant = np.where(second, 3 + 2 * first_digitised + second_digitised, 1 + first_digitised)
    variant = np.where(resolved, variant, 0).astype(np.int8)
    digitised = resolved & (first_digitised | (second & second_digitised))

    served_by = world.served_by[unit].copy()
    served_by[rng.random(n) >= world.portal_share[unit]] = SERVED_BY.index(NOT_SERVED)
    # a paper dossier handed over is entered in the successor's software: the portal, which keeps the
    # old unit's code on the record
    served_by[handed & (served_by == SERVED_BY.index(NOT_SERVED))] = SERVED_BY.index(PORTAL)

    return Dossiers(
        unit=unit, field=field, procedure=procedure, period=np.full(n, index, dtype=np.int16),
        received=received, due=due, finished=finished, returned=returned, updated=updated,
        status=status, channel=channel,
        channel_missing_portal=in_person & (rng.random(n) < MISSING_CHANNEL_PORTAL),
        channel_missing_agency=in_person & (rng.random(n) < MISSING_CHANNEL_AGENCY),
        fee=fee, paid_online=paid_online, payment_gateway=gateway,
        result_documents=variant, digitised=digitised, served_by=served_by,
        handed_to=handed_to, handed_at=handed_at,
    )


def _successors(world: World, unit: np.ndarray, field: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """The successor of each dossier pending at an old unit on the reform (-1 elsewhere, and where the
    conversion gives the unit none); the dossiers of a split old commune go to its successors in turn, a
    district's in a field the province gave to a department to that department."""
    handed_to = np.full(unit.size, -1, dtype=np.int64)
    for uid in np.unique(unit[pending]):
        options = world.successors[uid]
        if options.size:
            at = np.flatnonzero(pending & (unit == uid))
            handed_to[at] = options[np.arange(at.size) % options.size]
    district = pending & (world.units["level"].to_numpy()[unit] == "district")
    department = world.district_field_department[field]
    to_department = district & (department >= 0)
    handed_to[to_department] = department[to_department]
    return handed_to


def unit_in(d: Dossiers, after_reform: bool) -> np.ndarray:
    """The unit holding each dossier in a quarter: its successor after the reform once handed over."""
    return np.where(after_reform & (d.handed_to >= 0), d.handed_to, d.unit)


def pause_moments(status: np.ndarray, received: np.ndarray, updated: np.ndarray, finished: np.ndarray) -> np.ndarray:
    """When a dossier was last paused: waiting for documents or fees since halfway to its last
    update; stopped when it finished; never otherwise (NEVER)."""
    return np.where(np.isin(status, (5, 6)), received + (updated - received) // 2,
                    np.where(status == 8, finished, NEVER))
