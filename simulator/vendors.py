"""Two real vendors' one-stop-shop databases, written from the simulator's own dossiers: Tân Dân
(`[Business].[HoSos]`, `[Catalog].[Groups]`) and OpenCPS v2 (`opencps_dossier`,
`opencps_serviceinfo`), with the names, SQL types, code values and time zones of
../shared/vendors.md, as SQLite copies (docs/sample-sources.md, "Vendor databases").

What makes them hard to read is seeded and recorded in the ground truth:
- Tân Dân: soft-deleted rows (`DeletedOn` set, in UTC as the vendor's SoftDelete writes it;
  every other time is local), duplicates entered by mistake that must not count; a few
  dossiers under a `DonViId` that has no `Catalog.Groups` row (an unresolved vendor unit id);
  `DonViId` is a group code, never the unit's identifier (that is `Groups.MaDinhDanh`).
- OpenCPS: every time is UTC (local − 7 h); some dossiers are received, or released, between
  00:00 and 07:00 local on a quarter's first day, so that UTC read as local moves them into the
  previous quarter; units are OpenCPS's own `govAgencyCode`, which the province's table maps to
  identifiers; the field of work is only in `opencps_serviceinfo.domainCode`.

The ground truth beside them (`ground_truth/vendor_*.csv`) is counted here from the true
dossiers by the rules of docs/canonical-model.md (simulator.figures.derive, written apart from
the pipeline's transforms), not through any reader of these files.
"""
from __future__ import annotations

import csv
import sqlite3
import uuid
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tthc.config import ConfigError, Settings, repo_path
from tthc.form import FIGURES
from tthc.periods import Period
from simulator.dossiers import DAY, NEVER, ONLINE, POSTAL, Dossiers, pause_moments, seconds
from simulator.figures import derive
from simulator.personal import Applicants
from simulator.world import OPENCPS, SERVED_BY, TANDAN, World, served_units

TANDAN_FILE = "tandan/tandan.sqlite"
OPENCPS_FILE = "opencps/opencps.sqlite"
TRUTH_FIGURES = "vendor_bieu06.csv"
TRUTH_EXCLUSIONS = "vendor_exclusions.csv"
TRUTH_UNRESOLVED = "vendor_unresolved_units.csv"

UTC_OFFSET = 7 * 3600  # Asia/Ho_Chi_Minh, no daylight saving
SOFT_DELETED_SHARE = 0.01  # of Tân Dân's rows: a dossier entered twice, the copy soft-deleted
UNRESOLVED_SHARE = 0.01  # of one Tân Dân department's dossiers of UNRESOLVED_WINDOW: under a group code Groups lacks
UNRESOLVED_MIN = 3
# the temporary group of the spring 2025 reorganisation of departments, later removed from Catalog.Groups
UNRESOLVED_WINDOW = ("2025-04-01", "2025-07-01")
NIGHT_MOVES_PER_QUARTER = 6  # OpenCPS dossiers received / released in the night of a quarter's first day
NIGHT_SECONDS = 7 * 3600  # 00:00–06:59 local = 17:00–23:59 UTC of the day before

# Tân Dân stores the national codes as text (vendors.md §1)
TANDAN_CHANNEL = ("1", "2", "3")  # in person, online, postal (CHANNELS order)
# OpenCPS's words for the national codes, as Tân Dân's FormatTrangThaiHoSoDVCQG maps them (vendors.md §1)
OPENCPS_STATUS = {1: "receiving", 2: "new", 3: "denied", 4: "processing", 5: "waiting", 6: "paying",
                  7: "cancelled", 8: "unresolved", 9: "releasing", 10: "done"}
OPENCPS_STATUS_TEXT = {"receiving": "Chờ tiếp nhận", "new": "Mới tiếp nhận", "denied": "Từ chối tiếp nhận",
                       "processing": "Đang xử lý", "waiting": "Chờ bổ sung", "paying": "Chờ thực hiện nghĩa vụ tài chính",
                       "cancelled": "Đã rút", "unresolved": "Không giải quyết", "releasing": "Chờ trả kết quả",
                       "done": "Đã trả kết quả"}
OPENCPS_SUB_STATUS = {"waiting": "waiting_bosung", "paying": "paying_phi", "unresolved": "unresolved_tuchoi"}
OPENCPS_GROUP_ID, OPENCPS_COMPANY_ID = 35417, 20099

EXCLUSION_COLUMNS = ("source_id", "reason", "vendor_row_id", "dossier_id", "raw_unit_id", "unit_code", "field_code",
                     "received_at", "deleted_on_utc", "detail")
TRUTH_KEY = ("source_id", "unit_code", "field_code", "period", "period_start", "period_end")

TANDAN_DDL = """
CREATE TABLE HoSos (
    Id uniqueidentifier NOT NULL PRIMARY KEY,
    DonViId varchar(50) NULL,
    MaHoSo nvarchar(50) NULL,
    KenhThucHien varchar(2) NULL,
    MaTTHC varchar(50) NULL,
    MaLinhVuc nvarchar(50) NULL,
    TenLinhVuc nvarchar(500) NULL,
    NgayNopHoSo datetime2 NULL,
    NgayTiepNhan datetime2 NULL,
    NgayHenTra datetime2 NULL,
    NgayKetThucXuLy datetime2 NULL,
    NgayTra datetime2 NULL,
    NgayTuChoi datetime2 NULL,
    NgayYeuCauBoSung datetime2 NULL,
    TrangThaiHoSoId varchar(5) NULL,
    DuocThanhToanTrucTuyen varchar(2) NULL,
    DaSoHoaKetQua bit NULL,
    ChuHoSo nvarchar(150) NULL,
    SoGiayToChuHoSo varchar(50) NULL,
    SoDienThoaiChuHoSo varchar(50) NULL,
    EmailChuHoSo varchar(100) NULL,
    DiaChiChuHoSo nvarchar(500) NULL,
    CreatedOn datetime2 NOT NULL,
    LastModifiedOn datetime2 NULL,
    DeletedOn datetime2 NULL
);
CREATE UNIQUE INDEX IX_HoSos_MaHoSo_DonViId ON HoSos (MaHoSo, DonViId);
CREATE INDEX IX_HoSos_NgayTiepNhan ON HoSos (NgayTiepNhan);
CREATE TABLE Groups (
    Id uniqueidentifier NOT NULL PRIMARY KEY,
    GroupCode varchar(36) NOT NULL,
    GroupName nvarchar(500) NOT NULL,
    MaDinhDanh varchar(20) NULL,
    Type varchar(50) NULL,
    DeletedOn datetime2 NULL
);
CREATE UNIQUE INDEX IX_Groups_GroupCode ON Groups (GroupCode);
CREATE TABLE ThuTucs (
    Id uniqueidentifier NOT NULL PRIMARY KEY,
    MaTTHC varchar(50) NOT NULL,
    TenTTHC nvarchar(2000) NULL,
    MaLinhVucChinh nvarchar(50) NULL,
    DeletedOn datetime2 NULL
);
"""
TANDAN_COLUMNS = ("Id", "DonViId", "MaHoSo", "KenhThucHien", "MaTTHC", "MaLinhVuc", "TenLinhVuc", "NgayNopHoSo",
                  "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi", "NgayYeuCauBoSung",
                  "TrangThaiHoSoId", "DuocThanhToanTrucTuyen", "DaSoHoaKetQua", "ChuHoSo", "SoGiayToChuHoSo",
                  "SoDienThoaiChuHoSo", "EmailChuHoSo", "DiaChiChuHoSo", "CreatedOn", "LastModifiedOn", "DeletedOn")

OPENCPS_DDL = """
CREATE TABLE opencps_dossier (
    uuid_ varchar(75) NULL,
    dossierId bigint NOT NULL PRIMARY KEY,
    groupId bigint NULL,
    companyId bigint NULL,
    userId bigint NULL,
    createDate datetime NULL,
    modifiedDate datetime NULL,
    serviceCode varchar(128) NULL,
    serviceName longtext NULL,
    govAgencyCode varchar(128) NULL,
    govAgencyName varchar(512) NULL,
    applicantName varchar(512) NULL,
    applicantIdType varchar(128) NULL,
    applicantIdNo varchar(128) NULL,
    address varchar(512) NULL,
    contactName varchar(512) NULL,
    contactTelNo varchar(128) NULL,
    contactEmail varchar(255) NULL,
    dossierNo varchar(255) NULL,
    submitDate datetime NULL,
    receiveDate datetime NULL,
    dueDate datetime NULL,
    extendDate datetime NULL,
    releaseDate datetime NULL,
    finishDate datetime NULL,
    cancellingDate datetime NULL,
    dossierStatus varchar(255) NULL,
    dossierStatusText varchar(512) NULL,
    dossierSubStatus varchar(128) NULL,
    dossierSubStatusText varchar(512) NULL,
    online_ tinyint NULL,
    viaPostal integer NULL,
    fromViaPostal integer NULL,
    originality integer NULL
);
CREATE INDEX IX_opencps_dossier_receiveDate ON opencps_dossier (receiveDate);
CREATE TABLE opencps_serviceinfo (
    uuid_ varchar(75) NULL,
    serviceInfoId bigint NOT NULL PRIMARY KEY,
    groupId bigint NULL,
    companyId bigint NULL,
    createDate datetime NULL,
    modifiedDate datetime NULL,
    serviceCode varchar(128) NULL,
    serviceName longtext NULL,
    administrationCode varchar(128) NULL,
    administrationName longtext NULL,
    domainCode varchar(128) NULL,
    domainName longtext NULL,
    maxLevel integer NULL,
    public_ tinyint NULL
);
"""
OPENCPS_COLUMNS = ("uuid_", "dossierId", "groupId", "companyId", "userId", "createDate", "modifiedDate", "serviceCode",
                   "serviceName", "govAgencyCode", "govAgencyName", "applicantName", "applicantIdType",
                   "applicantIdNo", "address", "contactName", "contactTelNo", "contactEmail", "dossierNo",
                   "submitDate", "receiveDate", "dueDate", "extendDate", "releaseDate", "finishDate",
                   "cancellingDate", "dossierStatus", "dossierStatusText", "dossierSubStatus",
                   "dossierSubStatusText", "online_", "viaPostal", "fromViaPostal", "originality")
SERVICEINFO_COLUMNS = ("uuid_", "serviceInfoId", "groupId", "companyId", "createDate", "modifiedDate", "serviceCode",
                       "serviceName", "administrationCode", "administrationName", "domainCode", "domainName",
                       "maxLevel", "public_")


# ---------------------------------------------------------------- before ids and files


def night_moments(world: World, d: Dossiers, periods: list[Period], rng: np.random.Generator) -> tuple[Dossiers, list[dict]]:
    """A few OpenCPS dossiers per quarter received, and a few released, in the night (00:00–06:59
    local) of the quarter's first day: online dossiers received automatically, results released
    by a batch. Stored in UTC they fall on the previous day, in the previous quarter. Received
    moments move from the first week to that night, finishing moments from the first week of
    dossiers received earlier; the dossiers stay in their quarter and remain consistent. Returns
    the changed dossiers and one record per move."""
    code = SERVED_BY.index(OPENCPS)
    mine = d.served_by == code
    if not mine.any():
        return d, []
    received, finished = d.received.copy(), d.finished.copy()
    moves = []
    for period in periods[1:]:
        first = seconds(period.start)
        week = first + 7 * DAY
        candidates = np.flatnonzero(mine & (received >= first) & (received < week))
        for i in np.sort(rng.choice(candidates, min(NIGHT_MOVES_PER_QUARTER, candidates.size), replace=False)):
            received[i] = first + int(rng.integers(0, NIGHT_SECONDS))
            moves.append({"index": int(i), "column": "received_at", "period": period})
        candidates = np.flatnonzero(mine & (finished >= first) & (finished < week) & (received < first)
                                    & np.isin(d.status, (7, 8, 9, 10)))
        for i in np.sort(rng.choice(candidates, min(NIGHT_MOVES_PER_QUARTER, candidates.size), replace=False)):
            finished[i] = first + int(rng.integers(0, NIGHT_SECONDS))
            moves.append({"index": int(i), "column": "finished_at", "period": period})
    return replace(d, received=received, finished=finished), moves


# ---------------------------------------------------------------- the files


@dataclass
class VendorOutput:
    defects: list[dict]
    rows: dict[str, int]  # rows written per table
    personal_rows: dict[str, np.ndarray]  # dossier positions whose personal data each database holds


def write(root: Path, settings: Settings, world: World, d: Dossiers, ids: pa.Array, people: Applicants,
          periods: list[Period], moves: list[dict], rng: np.random.Generator) -> VendorOutput:
    """Write both databases under `root` and their ground truth under `root/ground_truth`."""
    tandan_rng, opencps_rng = rng.spawn(2)
    unit_codes = world.units["unit_code"].to_numpy()
    field_codes = world.fields["code"].to_numpy()
    truth_rows: list[dict] = []
    exclusions: list[dict] = []
    unresolved_rows: list[dict] = []
    defects: list[dict] = []
    rows: dict[str, int] = {}
    personal: dict[str, np.ndarray] = {}

    tandan, handed = _positions(d, TANDAN), _handed_to_software(world, d, TANDAN)
    if tandan.size or handed.size:
        # a dossier handed over to a Tân Dân department is entered there under the department's own unit on
        # the morning of the hand-over: Tân Dân rewrites the unit, the old unit's software keeps its copy
        held = replace(d, unit=np.where(np.isin(np.arange(d.unit.size), handed), d.handed_to, d.unit))
        rows_of = np.concatenate([tandan, handed])
        rows_of = rows_of[np.argsort(d.received[rows_of], kind="stable")]
        out = _write_tandan(root / TANDAN_FILE, world, held, ids, people, rows_of, tandan_rng, handed)
        rows |= out["rows"]
        personal[TANDAN] = rows_of
        counted = np.concatenate([np.setdiff1d(tandan, out["unresolved"]), handed])
        # before the reform a handed-over dossier was its old unit's, reported by the old unit's software
        truth_rows += _figures(TANDAN, world, d, counted, held.unit[counted], unit_codes, periods,
                               counts_from=np.where(np.isin(counted, handed), seconds(world.reform_date), 0))
        exclusions += out["exclusions"]
        raw, lost = out["raw_unit_id"], out["unresolved"]
        by_label = {p.label: p for p in periods}
        for row in _figures(TANDAN, world, d, lost, np.zeros(lost.size, dtype=np.int64), np.array([raw], dtype=object),
                            periods, by_field=False):
            period = by_label[row["period"]]
            received = d.received[lost]
            row["raw_unit_id"] = row.pop("unit_code")
            row["unit_code_if_resolved"] = out["unresolved_unit"]
            row["dossiers_received"] = int(((received >= seconds(period.start))
                                            & (received < seconds(period.end) + DAY)).sum())
            unresolved_rows.append(row)
            defects.append(_defect("unresolved_unit", TANDAN, row["period"], raw, "", "DonViId", "", raw,
                                   f"{row['received_total']} dossier(s) of the period (received_total) under DonViId "
                                   f"{raw}, which has no Catalog.Groups row; their unit is {out['unresolved_unit']}"))
        defects += _soft_deleted_defects(out["exclusions"], periods)

    opencps = _positions(d, OPENCPS)
    if opencps.size:
        out = _write_opencps(root / OPENCPS_FILE, settings, world, d, ids, people, opencps, opencps_rng)
        rows |= out["rows"]
        personal[OPENCPS] = opencps
        truth_rows += _figures(OPENCPS, world, d, opencps, d.unit[opencps], unit_codes, periods)
        for move in moves:
            i, column, period = move["index"], move["column"], move["period"]
            local = d.received[i] if column == "received_at" else d.finished[i]
            vendor_column = "receiveDate" if column == "received_at" else (
                "cancellingDate" if d.status[i] == 7 else "releaseDate")
            defects.append(_defect(
                "utc_boundary", OPENCPS, period.label, unit_codes[d.unit[i]], field_codes[d.field[i]], column,
                _iso(local), _iso(local - UTC_OFFSET),
                f"dossier {ids[i].as_py()}: {vendor_column} {_iso(local - UTC_OFFSET)} is UTC, {_iso(local)} local; "
                f"read as local time it falls before {period.start.isoformat()}, in the previous quarter"))

    truth = root / "ground_truth"
    _write_csv(truth / TRUTH_FIGURES, [*TRUTH_KEY, *FIGURES], truth_rows)
    _write_csv(truth / TRUTH_EXCLUSIONS, EXCLUSION_COLUMNS, exclusions)
    _write_csv(truth / TRUTH_UNRESOLVED, ["source_id", "raw_unit_id", "unit_code_if_resolved", "period", "period_start",
                                          "period_end", "dossiers_received", *FIGURES], unresolved_rows)
    return VendorOutput(defects=defects, rows=rows, personal_rows=personal)


def _handed_to_software(world: World, d: Dossiers, source_id: str) -> np.ndarray:
    """The dossiers handed over on the reform to a unit that `source_id`'s software serves, while their
    old unit was served by another (the portal)."""
    code = SERVED_BY.index(source_id)
    return np.flatnonzero((d.handed_to >= 0) & (world.served_by[np.maximum(d.handed_to, 0)] == code)
                          & (d.served_by != code))


def _positions(d: Dossiers, source_id: str) -> np.ndarray:
    rows = np.flatnonzero(d.served_by == SERVED_BY.index(source_id))
    return rows[np.argsort(d.received[rows], kind="stable")]


def _iso(moment: int) -> str:
    return str(np.datetime64(int(moment), "s")).replace("T", " ")


def _text(moments: np.ndarray, offset: int = 0, fraction: pa.Array | str | None = None) -> list[str | None]:
    """'YYYY-MM-DD HH:MM:SS' (plus `fraction`), `offset` seconds earlier; None for NEVER."""
    known = moments != NEVER
    stamps = pa.array(np.where(known, moments - offset, 0).astype("datetime64[s]"), mask=~known)
    text = pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S")
    if fraction is not None:
        text = pc.binary_join_element_wise(text, fraction, "")
    return text.to_pylist()


def _fractions(rng: np.random.Generator, n: int) -> pa.Array:
    """datetime2(7)'s seven digits of a second: '.1234567'."""
    return pc.binary_join_element_wise(".", pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10**7, n)), pa.string()),
                                                         7, "0"), "")


def _guids(rng: np.random.Generator, n: int, upper: bool = True) -> list[str]:
    raw = rng.bytes(16 * n)
    out = [str(uuid.UUID(bytes=raw[16 * i: 16 * i + 16], version=4)) for i in range(n)]
    return [g.upper() for g in out] if upper else out


def _insert(connection: sqlite3.Connection, table: str, columns: tuple[str, ...], rows) -> int:
    cursor = connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                    rows)
    return cursor.rowcount


def _write_tandan(path: Path, world: World, d: Dossiers, ids: pa.Array, people: Applicants, rows: np.ndarray,
                  rng: np.random.Generator, handed: np.ndarray) -> dict:
    """`handed`: the dossiers of `rows` entered on the reform's hand-over (CreatedOn then); none of them
    is among the seeded unresolved or soft-deleted copies."""
    units = world.units
    departments = sorted({int(u) for u in d.unit[rows]}, key=lambda u: units.at[u, "unit_code"])
    group_codes = dict(zip(departments, _guids(rng, len(departments), upper=False)))
    orphan = _guids(rng, 1, upper=False)[0]
    # the unresolved ones: a few dossiers of the busiest department received in UNRESOLVED_WINDOW,
    # under a group code no Groups row has
    busiest = max(departments, key=lambda u: int((d.unit[rows] == u).sum()))
    window = [seconds(date.fromisoformat(day)) for day in UNRESOLVED_WINDOW]
    own = np.setdiff1d(rows, handed)
    of_busiest = own[(d.unit[own] == busiest) & (d.received[own] >= window[0]) & (d.received[own] < window[1])]
    n_unresolved = min(of_busiest.size, max(UNRESOLVED_MIN, round(UNRESOLVED_SHARE * of_busiest.size)))
    unresolved = np.sort(rng.choice(of_busiest, n_unresolved, replace=False))
    # the copies entered by mistake, soft-deleted later
    eligible = np.setdiff1d(own, unresolved)
    clones = np.sort(rng.choice(eligible, min(eligible.size, max(1, round(SOFT_DELETED_SHARE * rows.size))), replace=False))

    order = np.concatenate([rows, clones])
    n, n_rows = order.size, rows.size
    x = d.take(order)
    p = people.take(order)
    unit_of = np.array([group_codes[int(u)] for u in x.unit], dtype=object)
    unit_of[np.isin(order[:n_rows], unresolved).nonzero()[0]] = orphan

    dossier_codes = ids.take(pa.array(order)).to_pylist()
    seen: dict[str, int] = {}
    for k in range(n_rows, n):  # the copy took the next number of the day: 9001, 9002, …
        base = dossier_codes[k].rsplit("-", 1)[0]
        seen[base] = seen.get(base, 9000) + 1
        dossier_codes[k] = f"{base}-{seen[base]}"

    submitted = np.where(x.channel == ONLINE, x.received - rng.integers(60, 36 * 3600, n), x.received)
    created = submitted.copy()
    entered_on_handover = np.isin(order[:n_rows], handed)
    created[:n_rows][entered_on_handover] = x.handed_at[:n_rows][entered_on_handover]
    created[n_rows:] = x.received[n_rows:] + rng.integers(60, 1800, n - n_rows)
    deleted_local = np.full(n, NEVER, dtype=np.int64)
    deleted_local[n_rows:] = created[n_rows:] + rng.integers(300, 3 * DAY, n - n_rows)
    modified = np.where(deleted_local != NEVER, deleted_local, x.updated)
    modified[:n_rows][entered_on_handover] = np.maximum(modified[:n_rows], created[:n_rows])[entered_on_handover]
    # a copy deleted before its dossier finished stayed received ('2'), without the later dates
    still_open = (deleted_local < x.finished) & (np.arange(n) >= n_rows)
    x.status[still_open] = 2
    x.finished[still_open] = x.returned[still_open] = NEVER
    x.digitised[still_open] = False
    status = x.status
    finished_like = np.isin(status, (7, 8, 9, 10))
    paused_at = pause_moments(status, x.received, x.updated, x.finished)
    channel = [None if missing else TANDAN_CHANNEL[c] for c, missing in zip(x.channel.tolist(),
                                                                            x.channel_missing_portal.tolist())]
    field_of = world.procedures["field"].to_numpy()[x.procedure]
    received_fraction, modified_fraction = _fractions(rng, n), _fractions(rng, n)
    values = {
        "Id": _guids(rng, n),
        "DonViId": unit_of.tolist(),
        "MaHoSo": dossier_codes,
        "KenhThucHien": channel,
        "MaTTHC": world.procedures["code"].to_numpy()[x.procedure].tolist(),
        "MaLinhVuc": world.fields["code"].to_numpy()[field_of].tolist(),
        "TenLinhVuc": world.fields["name"].to_numpy()[field_of].tolist(),
        "NgayNopHoSo": _text(submitted, fraction=pc.if_else(pa.array(submitted == x.received), received_fraction,
                                                            _fractions(rng, n))),
        "NgayTiepNhan": _text(x.received, fraction=received_fraction),
        "NgayHenTra": _text(x.due, fraction=".0000000"),
        "NgayKetThucXuLy": _text(np.where(finished_like, x.finished, NEVER), fraction=_fractions(rng, n)),
        "NgayTra": _text(x.returned, fraction=_fractions(rng, n)),
        "NgayTuChoi": _text(np.where(status == 3, x.finished, NEVER), fraction=_fractions(rng, n)),
        "NgayYeuCauBoSung": _text(paused_at, fraction=_fractions(rng, n)),
        "TrangThaiHoSoId": [str(s) for s in status.tolist()],
        "DuocThanhToanTrucTuyen": [str(g) if paid else None for g, paid in zip(x.payment_gateway.tolist(),
                                                                                 x.paid_online.tolist())],
        "DaSoHoaKetQua": x.digitised.astype(int).tolist(),
        "ChuHoSo": p.name.to_pylist(),
        "SoGiayToChuHoSo": p.id_number.to_pylist(),
        "SoDienThoaiChuHoSo": p.phone.to_pylist(),
        "EmailChuHoSo": p.email.to_pylist(),
        "DiaChiChuHoSo": p.address.to_pylist(),
        "CreatedOn": _text(created, fraction=_fractions(rng, n)),
        "LastModifiedOn": _text(modified, fraction=modified_fraction),
        # SoftDelete writes DateTime.UtcNow, unlike every other time of the table (vendors.md §1)
        "DeletedOn": _text(deleted_local, offset=UTC_OFFSET, fraction=modified_fraction),
    }
    insert_order = np.argsort(created, kind="stable")
    table_rows = list(zip(*[[values[c][i] for i in insert_order] for c in TANDAN_COLUMNS]))

    groups = [(g.upper(), code, units.at[u, "unit_name"], units.at[u, "unit_code"], "don-vi", None)
              for (u, code), g in zip(group_codes.items(), _guids(rng, len(group_codes)))]
    province_office = _guids(rng, 2)
    groups += [(province_office[0], "ubnd-tinh", f"UBND {world.province_name}", f"000.00.00.H{world.province_code}",
                "don-vi", None),
               (province_office[1], "trung-tam-hcc", "Trung tâm Phục vụ hành chính công", None, "phong-ban", None)]
    procedures = world.procedures
    used = np.unique(x.procedure)
    thutucs = list(zip(_guids(rng, used.size), procedures["code"].to_numpy()[used].tolist(),
                       procedures["name"].to_numpy()[used].tolist(),
                       world.fields["code"].to_numpy()[procedures["field"].to_numpy()[used]].tolist(),
                       [None] * used.size))

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(TANDAN_DDL)
        counts = {"HoSos": _insert(connection, "HoSos", TANDAN_COLUMNS, table_rows),
                  "Groups": _insert(connection, "Groups", ("Id", "GroupCode", "GroupName", "MaDinhDanh", "Type",
                                                           "DeletedOn"), groups),
                  "ThuTucs": _insert(connection, "ThuTucs", ("Id", "MaTTHC", "TenTTHC", "MaLinhVucChinh", "DeletedOn"),
                                     thutucs)}
        connection.commit()
    finally:
        connection.close()

    unit_codes, field_codes = units["unit_code"].to_numpy(), world.fields["code"].to_numpy()
    exclusions = []
    for k in range(n):
        if k >= n_rows:
            reason, detail = "soft_deleted", f"a copy of {ids[order[k]].as_py()} entered by mistake; DeletedOn is UTC"
        elif unit_of[k] == orphan:
            reason, detail = "unresolved_unit", "DonViId has no Catalog.Groups row"
        else:
            continue
        exclusions.append({
            "source_id": TANDAN, "reason": reason, "vendor_row_id": values["Id"][k], "dossier_id": dossier_codes[k],
            "raw_unit_id": unit_of[k], "unit_code": unit_codes[x.unit[k]], "field_code": field_codes[x.field[k]],
            "received_at": _iso(x.received[k]), "deleted_on_utc": values["DeletedOn"][k] or "", "detail": detail,
        })
    return {"rows": counts, "unresolved": unresolved, "raw_unit_id": orphan,
            "unresolved_unit": units.at[busiest, "unit_code"], "exclusions": exclusions}


def agency_codes(settings: Settings) -> dict[str, str]:
    """unit_code → govAgencyCode from the province's table the registry names for OpenCPS
    (`lookups.unit_code.file`, CSV `govAgencyCode,unit_code`)."""
    try:
        lookup = settings.source(OPENCPS).spec.get("lookups", {}).get("unit_code", {})
    except ConfigError:
        return {}
    if not lookup.get("file"):
        return {}
    with open(repo_path(lookup["file"]), encoding="utf-8", newline="") as fh:
        return {row["unit_code"]: row["govAgencyCode"] for row in csv.DictReader(fh)}


def _write_opencps(path: Path, settings: Settings, world: World, d: Dossiers, ids: pa.Array, people: Applicants,
                   rows: np.ndarray, rng: np.random.Generator) -> dict:
    units = world.units
    codes = agency_codes(settings)
    missing = sorted(set(served_units(settings, OPENCPS)) - set(codes))
    if missing:
        raise ConfigError(f"{settings.sources_file}: source {OPENCPS}: no govAgencyCode for {missing} in its unit_code lookup")
    x = d.take(rows)
    p = people.take(rows)
    n = rows.size
    unit_code = units["unit_code"].to_numpy()[x.unit]
    status = x.status
    words = [OPENCPS_STATUS[s] for s in status.tolist()]
    released = np.where(np.isin(status, (8, 9, 10)), x.finished, NEVER)
    cancelled = np.where(status == 7, x.finished, NEVER)
    submitted = np.where(x.channel == ONLINE, x.received - rng.integers(60, 36 * 3600, n), x.received)
    via_postal = np.where(np.isin(status, (9, 10)) & (rng.random(n) < 0.05), 2, 0)
    values = {
        "uuid_": _guids(rng, n, upper=False),
        "dossierId": (101 + np.arange(n)).tolist(),
        "groupId": [OPENCPS_GROUP_ID] * n,
        "companyId": [OPENCPS_COMPANY_ID] * n,
        "userId": rng.integers(30_000, 30_200, n).tolist(),
        "createDate": _text(submitted, UTC_OFFSET),
        "modifiedDate": _text(x.updated, UTC_OFFSET),
        "serviceCode": world.procedures["code"].to_numpy()[x.procedure].tolist(),
        "serviceName": world.procedures["name"].to_numpy()[x.procedure].tolist(),
        "govAgencyCode": [codes[c] for c in unit_code],
        "govAgencyName": units["unit_name"].to_numpy()[x.unit].tolist(),
        "applicantName": p.name.to_pylist(),
        "applicantIdType": ["citizen"] * n,
        "applicantIdNo": p.id_number.to_pylist(),
        "address": p.address.to_pylist(),
        "contactName": p.name.to_pylist(),
        "contactTelNo": p.phone.to_pylist(),
        "contactEmail": p.email.to_pylist(),
        "dossierNo": ids.take(pa.array(rows)).to_pylist(),
        "submitDate": _text(submitted, UTC_OFFSET),
        "receiveDate": _text(x.received, UTC_OFFSET),
        "dueDate": _text(x.due, UTC_OFFSET),
        "extendDate": [None] * n,
        "releaseDate": _text(released, UTC_OFFSET),
        "finishDate": _text(x.returned, UTC_OFFSET),
        "cancellingDate": _text(cancelled, UTC_OFFSET),
        "dossierStatus": words,
        "dossierStatusText": [OPENCPS_STATUS_TEXT[w] for w in words],
        "dossierSubStatus": [OPENCPS_SUB_STATUS.get(w) for w in words],
        "dossierSubStatusText": [None] * n,
        "online_": (x.channel == ONLINE).astype(int).tolist(),
        "viaPostal": via_postal.tolist(),
        "fromViaPostal": (x.channel == POSTAL).astype(int).tolist(),
        "originality": np.where(x.channel == ONLINE, 3, 1).tolist(),
    }
    table_rows = list(zip(*[values[c] for c in OPENCPS_COLUMNS]))

    # every service of the fields the OpenCPS departments handle, with the province's field code
    handled = np.flatnonzero(world.field_weights[np.unique(x.unit)].sum(axis=0) > 0)
    procedures = world.procedures[world.procedures["field"].isin(handled)].sort_values("code")
    owner = {}
    for u in np.unique(x.unit):
        for f in np.flatnonzero(world.field_weights[u] > 0):
            owner.setdefault(int(f), int(u))
    first_moment = _text(np.array([seconds(world.reform_date) - 800 * DAY]), UTC_OFFSET)[0]
    services = []
    for k, rec in enumerate(procedures.itertuples(index=False)):
        u = owner[int(rec.field)]
        services.append((str(uuid.UUID(bytes=rng.bytes(16), version=4)), 501 + k, OPENCPS_GROUP_ID, OPENCPS_COMPANY_ID,
                         first_moment, first_moment, rec.code, rec.name, codes[units.at[u, "unit_code"]],
                         units.at[u, "unit_name"], world.fields.at[int(rec.field), "code"],
                         world.fields.at[int(rec.field), "name"], 4 if rec.fee == 0 else 3, 1))

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(OPENCPS_DDL)
        counts = {"opencps_dossier": _insert(connection, "opencps_dossier", OPENCPS_COLUMNS, table_rows),
                  "opencps_serviceinfo": _insert(connection, "opencps_serviceinfo", SERVICEINFO_COLUMNS, services)}
        connection.commit()
    finally:
        connection.close()
    return {"rows": counts}


# ---------------------------------------------------------------- ground truth


def _figures(source_id: str, world: World, d: Dossiers, rows: np.ndarray, keys: np.ndarray, key_names: np.ndarray,
             periods: list[Period], by_field: bool = True, counts_from: np.ndarray | None = None) -> list[dict]:
    """Biểu 06 rows (nonzero only) of the dossiers `rows`, per key (× field) and reporting quarter;
    `counts_from`: per row, the moment from which its quarters count it (a dossier handed over)."""
    if rows.size == 0:
        return []
    x = d.take(rows)
    n_fields = len(world.fields) if by_field else 1
    key = keys.astype(np.int64) * n_fields + (x.field if by_field else 0)
    n_keys = len(key_names) * n_fields
    out = []
    for period in periods[1:]:
        y, k = x, key
        if counts_from is not None:
            now = counts_from <= seconds(period.start)
            y, k = x.take(now), key[now]
        figures = derive(y.received, y.due, y.finished, y.status, y.channel == ONLINE, k, n_keys, period)
        for k in np.flatnonzero(figures.any(axis=1)):
            out.append({"source_id": source_id, "unit_code": key_names[k // n_fields],
                        **({"field_code": world.fields.at[int(k % n_fields), "code"]} if by_field else {}),
                        "period": period.label, "period_start": period.start.isoformat(),
                        "period_end": period.end.isoformat(),
                        **{name: int(v) for name, v in zip(FIGURES, figures[k])}})
    return out


def _defect(kind: str, source_id: str, period: str, unit_code: str, field_code: str, column: str, true_value,
            reported_value, detail: str) -> dict:
    return {"defect_id": "", "kind": kind, "source_id": source_id, "period": period, "unit_code": unit_code,
            "field_code": field_code, "column": column, "true_value": true_value, "reported_value": reported_value,
            "detail": detail}


def _soft_deleted_defects(exclusions: list[dict], periods: list[Period]) -> list[dict]:
    """One defect per quarter and unit: how many soft-deleted copies were received in it."""
    counts: dict[tuple[str, str], int] = {}
    for e in exclusions:
        if e["reason"] != "soft_deleted":
            continue
        day = e["received_at"][:10]
        period = next((p.label for p in periods[1:] if p.start.isoformat() <= day <= p.end.isoformat()), None)
        if period:
            counts[(period, e["unit_code"])] = counts.get((period, e["unit_code"]), 0) + 1
    return [_defect("soft_deleted", TANDAN, period, unit, "", "DeletedOn", "", n,
                    f"{n} soft-deleted row(s) received in {period} (copies of dossiers entered twice; DeletedOn set, "
                    "in UTC): not dossiers, must not count")
            for (period, unit), n in sorted(counts.items())]


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
