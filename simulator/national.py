"""National-scale synthetic dossiers, landed directly in the national-portal sync shape (tthc.portal), as the http_api
extractor lands it.

Every department and commune of the new unit system (config/national/province.yaml) receives
dossiers in one quarter; the records active in the quarter's window (received in it, or
earlier and not finished before it) are written in bounded batches, vectorised with numpy and
pyarrow, straight into `var/landing/<period>/<source>/dossiers.parquet` with its
`manifest.json`, exactly as `extractors/http_api.py` lands them: the kept wire fields only
(KEPT_FIELDS, all text), `yyyyMMddHHmmss` dates, portal status and channel codes, ordered by
`MaHoSo`, row groups of 50,000. No personal data field exists in what is written. So a
benchmark measures the pipeline, not HTTP.

Distributions follow the province sample (simulator/dossiers.py): level shares after the
reform, refused / withdrawn / postal / paid-online shares, the missing channel of in-person
dossiers; unit sizes are log-normal. Seeded defects, each a small share: a dossier sent twice
(an older update of the same MaHoSo), a dossier listed under a second unit, unreadable dates,
due before received, an unknown field code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tthc.landing import Manifest, ParquetLanding, landing_dir
from tthc.portal import KEPT_FIELDS, LANDING_SCHEMA, STAMP_FORMAT
from tthc.config import Settings
from tthc.periods import Period
from simulator.dossiers import (MISSING_CHANNEL_PORTAL, PAID_ONLINE_SHARE, POSTAL_SHARE, REFUSED_SHARE,
                                  RETURNED_SHARE, WITHDRAWN_SHARE, LEVEL_SHARES_AFTER_REFORM)
from tthc.units import units_in_force, units_for_province

DAY = 86_400
BATCH = 500_000
ONLINE_SHARE = 0.42
CARRIED_SHARE = 0.12  # of the window's records: received the quarter before, still open at its start
FEE_SHARE = 0.4
FEES = np.array([10_000, 15_000, 20_000, 30_000, 50_000, 100_000, 200_000, 500_000], dtype=np.int64)
PROCESSING_DAYS = np.array([0, 1, 2, 3, 5, 7, 10, 15, 20, 30], dtype=np.int64)
PROCESSING_WEIGHTS = np.array([0.08, 0.12, 0.1, 0.18, 0.17, 0.12, 0.1, 0.06, 0.04, 0.03])
PROCEDURES_PER_FIELD = 120
PENDING_STATUSES = np.array([2, 4, 5, 6])
PENDING_WEIGHTS = np.array([0.15, 0.55, 0.20, 0.10])
# seeded defects (shares of records)
RESENT_SHARE = 0.001        # the same MaHoSo sent again with an older NgayCapNhat
SECOND_UNIT_SHARE = 0.0002  # the same MaHoSo listed under another unit
UNREADABLE_DATE_SHARE = 0.0001
DUE_BEFORE_RECEIVED_SHARE = 0.0005
UNKNOWN_FIELD_SHARE = 0.0002
RESULT_LISTS = [
    "[]",
    json.dumps([{"TenGiayTo": "Kết quả giải quyết", "DuocSoHoa": 1}], ensure_ascii=False),
    json.dumps([{"TenGiayTo": "Kết quả giải quyết", "DuocSoHoa": 0}], ensure_ascii=False),
    json.dumps([{"TenGiayTo": "Kết quả giải quyết", "DuocSoHoa": 1}, {"TenGiayTo": "Bản sao", "DuocSoHoa": 0}],
               ensure_ascii=False),
]
RESULT_WEIGHTS = np.array([0.15, 0.55, 0.2, 0.1])


@dataclass
class NationalWorld:
    unit_codes: np.ndarray  # object
    unit_weights: np.ndarray
    unit_fields: list[np.ndarray]  # per unit: indices into field_codes it handles
    field_codes: np.ndarray
    procedures: pa.Array  # PROCEDURES_PER_FIELD codes per field, field-major
    provinces: int


def world(settings: Settings, period: Period, seed: int) -> NationalWorld:
    units = units_in_force(units_for_province(settings), period.end)
    units = units[units["level"].isin(["department", "commune"])].reset_index(drop=True)
    rng = np.random.default_rng([seed, 1])
    sizes = rng.lognormal(0.0, 0.8, len(units))
    weights = np.zeros(len(units))
    for level, share in LEVEL_SHARES_AFTER_REFORM.items():
        mask = (units["level"] == level).to_numpy()
        weights[mask] = share * sizes[mask] / sizes[mask].sum()
    fields = settings.fields
    field_codes = np.array([f["code"] for f in fields], dtype=object)
    by_level = {lvl: np.array([i for i, f in enumerate(fields) if lvl in f.get("levels", [])])
                for lvl in ("department", "commune")}
    procedures = pa.array([f"{i + 1}.{j:06d}" for i in range(len(fields)) for j in range(1, PROCEDURES_PER_FIELD + 1)])
    return NationalWorld(units["unit_code"].to_numpy(dtype=object), weights / weights.sum(),
                         [by_level[lvl] for lvl in units["level"]], field_codes, procedures,
                         units["province_code"].nunique())


def _stamps(seconds: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Local seconds since 1970 → `yyyyMMddHHmmss` text (null where `missing`)."""
    text = pc.strftime(pa.array(seconds, pa.timestamp("s")), format=STAMP_FORMAT)
    return text if missing is None else pc.if_else(pa.array(missing), pa.nulls(len(seconds), pa.string()), text)


def _batch(w: NationalWorld, period: Period, start_id: int, n: int, rng: np.random.Generator) -> pa.RecordBatch:
    t0 = int(datetime(period.start.year, period.start.month, period.start.day, tzinfo=timezone.utc).timestamp())
    t1 = int(datetime(period.end.year, period.end.month, period.end.day, tzinfo=timezone.utc).timestamp()) + DAY
    span = t1 - t0
    unit = rng.choice(len(w.unit_codes), size=n, p=w.unit_weights)
    # a field the unit's level handles: draw per unit level via a uniform index into its list
    lengths = np.array([len(f) for f in w.unit_fields])
    pick = (rng.random(n) * lengths[unit]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.concatenate(w.unit_fields)
    field = flat[offsets[unit] + pick]
    procedure = field * PROCEDURES_PER_FIELD + rng.integers(0, PROCEDURES_PER_FIELD, n)

    carried = rng.random(n) < CARRIED_SHARE
    day = np.where(carried, rng.integers(-90, 0, n), (rng.random(n) * (span // DAY)).astype(np.int64))
    second = 7 * 3600 + 1800 + rng.integers(0, 9 * 3600, n)
    received = t0 + day * DAY + second
    processing = rng.choice(PROCESSING_DAYS, size=n, p=PROCESSING_WEIGHTS)
    due = received + processing * DAY + (processing == 0) * 4 * 3600
    # how the dossier went: early, on the due day, late (days), or still open
    outcome = rng.random(n)
    duration = np.where(outcome < 0.62, (rng.random(n) * np.maximum(processing, 1) * 0.9 * DAY).astype(np.int64),
               np.where(outcome < 0.86, processing * DAY + rng.integers(0, 3600 * 4, n),
                        processing * DAY + rng.integers(1, 25, n) * DAY))
    finished = received + duration
    status = np.where(rng.random(n) < RETURNED_SHARE, 10, 9)
    r = rng.random(n)
    status = np.where(r < REFUSED_SHARE, 3, np.where(r < REFUSED_SHARE + WITHDRAWN_SHARE, rng.choice([7, 8], n), status))
    refused = status == 3
    finished = np.where(refused, received + rng.integers(60, 3600, n), finished)
    # carried-over records were not finished before the window: those finished earlier are moved into it
    finished = np.where(carried & (finished < t0), t0 + (rng.random(n) * span * 0.5).astype(np.int64), finished)
    # not finished by the end of the window (a little after it: the run is some days after the quarter)
    now = t1 + 10 * DAY
    open_ = (finished > now) | (rng.random(n) < 0.06)
    status = np.where(open_ & ~refused, rng.choice(PENDING_STATUSES, size=n, p=PENDING_WEIGHTS), status)
    open_ = open_ & ~refused
    returned = finished + rng.integers(0, 3, n) * DAY + rng.integers(0, 8 * 3600, n)
    returned_missing = open_ | (status != 10)
    updated = np.where(open_, np.minimum(received + rng.integers(0, 40, n) * DAY, now),
                       np.where(returned_missing, finished, returned)) + rng.integers(0, 3600, n)

    channel = np.where(rng.random(n) < ONLINE_SHARE, 2, np.where(rng.random(n) < POSTAL_SHARE / (1 - ONLINE_SHARE), 3, 1))
    channel_missing = (channel == 1) & (rng.random(n) < MISSING_CHANNEL_PORTAL)
    has_fee = rng.random(n) < FEE_SHARE
    fee = np.where(has_fee, rng.choice(FEES, n), 0)
    paid = has_fee & (channel == 2) & (rng.random(n) < PAID_ONLINE_SHARE / ONLINE_SHARE)
    gateway = np.where(rng.random(n) < 0.7, 1, 2)
    results = np.where(status >= 9, rng.choice(len(RESULT_LISTS), size=n, p=RESULT_WEIGHTS), 0)

    ids = pc.binary_join_element_wise("HS", pc.utf8_lpad(pa.array(np.arange(start_id, start_id + n)).cast(pa.string()),
                                                          width=12, padding="0"), "")
    received_text = _stamps(received)
    due_text = _stamps(due)
    field_text = pa.array(w.field_codes[field], pa.string())
    # defects
    bad_date = rng.random(n) < UNREADABLE_DATE_SHARE
    received_text = pc.if_else(pa.array(bad_date), pa.scalar("không rõ"), received_text)
    due_early = rng.random(n) < DUE_BEFORE_RECEIVED_SHARE
    due_text = pc.if_else(pa.array(due_early), _stamps(received - 3 * DAY), due_text)
    unknown_field = rng.random(n) < UNKNOWN_FIELD_SHARE
    field_text = pc.if_else(pa.array(unknown_field), pa.scalar("KHAC"), field_text)

    columns = {
        "MaHoSo": ids,
        "MaTTHC": w.procedures.take(pa.array(procedure)),
        "MaLinhVuc": field_text,
        "MaCoQuan": pa.array(w.unit_codes[unit], pa.string()),
        "KenhThucHien": pa.array(channel.astype(np.int64), mask=channel_missing).cast(pa.string()),
        "NgayTiepNhan": received_text,
        "NgayHenTra": due_text,
        "NgayKetThucXuLy": _stamps(finished, open_),
        "NgayTra": _stamps(returned, returned_missing),
        "NgayCapNhat": _stamps(updated),
        "TrangThaiHoSo": pa.array(status.astype(np.int64)).cast(pa.string()),
        "PhiLePhi": pa.array(fee.astype(np.int64)).cast(pa.string()),
        "DuocThanhToanTrucTuyen": pa.array(gateway.astype(np.int64), mask=~paid).cast(pa.string()),
        "DanhSachGiayToKetQua": pa.array(RESULT_LISTS, pa.string()).take(pa.array(results)),
    }
    table = pa.table(columns, schema=LANDING_SCHEMA)
    # a dossier sent twice (older update first, the MaHoSo order kept) and one listed under a second unit
    resent = np.flatnonzero(rng.random(n) < RESENT_SHARE)
    second_unit = np.flatnonzero(rng.random(n) < SECOND_UNIT_SHARE)
    if len(resent) or len(second_unit):
        older = table.take(pa.array(resent))
        received = older.column("NgayTiepNhan")
        older = older.set_column(KEPT_FIELDS.index("NgayCapNhat"), "NgayCapNhat",
                                 pc.if_else(pc.utf8_is_digit(received), received, older.column("NgayCapNhat")))
        other = table.take(pa.array(second_unit))
        moved = pa.array(w.unit_codes[rng.integers(0, len(w.unit_codes), len(second_unit))], pa.string())
        other = other.set_column(KEPT_FIELDS.index("MaCoQuan"), "MaCoQuan", moved)
        order = np.concatenate([np.arange(n), resent, second_unit])
        rank = np.concatenate([np.ones(n), np.zeros(len(resent)), np.full(len(second_unit), 2)])
        index = np.lexsort((rank, order))
        table = pa.concat_tables([table, older, other]).take(pa.array(index))
    return table.combine_chunks().to_batches()[0]


def land(settings: Settings, period: Period, var: Path, records: int, seed: int = 2025,
         source_id: str | None = None) -> Path:
    """Write about `records` window records (plus the seeded repeats) for the period; returns the
    landing folder. Deterministic for (settings, period, records, seed)."""
    source = settings.source(source_id) if source_id else next(s for s in settings.sources if s.kind == "http_api")
    w = world(settings, period, seed)
    folder = landing_dir(var, period, source.id)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("manifest.json", "failed.json"):
        (folder / stale).unlink(missing_ok=True)
    landing = ParquetLanding(folder / "dossiers.parquet", LANDING_SCHEMA)
    newest = None
    try:
        for i, start in enumerate(range(0, records, BATCH)):
            n = min(BATCH, records - start)
            batch = _batch(w, period, start + 1, n, np.random.default_rng([seed, 2, i]))
            landing.write_batch(batch)
            stamps = batch.column("NgayCapNhat")
            top = pc.max(stamps.filter(pc.utf8_is_digit(stamps))).as_py()
            newest = max(filter(None, [newest, top]), default=None)
        info = landing.close()
    except BaseException:
        landing.abort()
        raise
    extracted_at = datetime(period.end.year, period.end.month, period.end.day, tzinfo=timezone.utc) + timedelta(days=10)
    manifest = Manifest(
        source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok",
        extracted_at=extracted_at.isoformat(), run_id=f"synthetic_{records}_{seed}", files=[info], rows=info["rows"],
        stats={"mode": "full", "synthetic": True, "seed": seed, "records": records, "provinces": w.provinces,
               "units": len(w.unit_codes),
               "max_updated_at": datetime.strptime(newest, STAMP_FORMAT).isoformat() if newest else None})
    manifest.write(folder)
    return folder
