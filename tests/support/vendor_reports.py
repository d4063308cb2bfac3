"""Each vendor's own Biểu 06, computed straight from its raw table as ../shared/vendors.md
reads the vendor's code (Tân Dân's BaoCaoSo06aHandler, OpenCPS's statistics engine), with
pandas: written apart from the pipeline's rule sets, so that the tests compare two readings."""
from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pandas as pd

from tthc.periods import Period

FIGURES_PRINTED = ["received_total", "received_online", "received_direct_postal", "carried_over",
                   "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
                   "pending_total", "pending_within_due", "pending_overdue"]


def _read(path: Path, sql: str) -> pd.DataFrame:
    with sqlite3.connect(path) as db:
        return pd.read_sql(sql, db)


REFORM = "2025-07-01"


def tandan_report(db: Path, period: Period, null_channel_in_neither: bool = True,
                  stopped_before_the_period: bool = True, handed_over_later: bool = True) -> pd.DataFrame:
    """BaoCaoSo06aHandler: calendar days; rows in DangXuLy ∪ DaXuLy ∪ BoSung ∪ TraLai, joined with
    Catalog.ThuTucs and Catalog.Groups (unit = Groups.MaDinhDanh); per unit. Without
    `stopped_before_the_period`, the dossiers stopped (8) before the period, which no landing
    window holds, are left out; without `handed_over_later`, in a period before the reform, the
    dossiers received before it that the department took over on it (created then)."""
    rows = _read(db, """
        SELECT g.MaDinhDanh AS unit_code, h.KenhThucHien AS channel, h.TrangThaiHoSoId AS status,
               date(h.NgayTiepNhan) AS received, date(h.NgayHenTra) AS due, date(h.NgayKetThucXuLy) AS ended,
               date(h.NgayYeuCauBoSung) AS supplement, date(h.CreatedOn) AS created
        FROM HoSos h JOIN ThuTucs t ON t.MaTTHC = h.MaTTHC JOIN Groups g ON h.DonViId = g.GroupCode
        WHERE h.DeletedOn IS NULL AND h.TrangThaiHoSoId NOT IN ('1', '3')""")
    if not handed_over_later and period.end.isoformat() < REFORM:
        rows = rows[~((rows["received"] < REFORM) & (rows["created"] >= REFORM))]
    t, d = period.start.isoformat(), period.end.isoformat()
    s, rec, due, end, sup = rows["status"], rows["received"], rows["due"], rows["ended"], rows["supplement"]
    ended_in = end.notna() & (end >= t) & (end <= d)
    da_xu_ly = s.isin(["9", "10"]) & ended_in
    tra_lai = (s == "7") & ended_in & (rec <= d)
    dang_xu_ly = (rec <= d) & (s.isin(["2", "4"]) | (s.isin(["9", "10", "7"]) & end.notna() & (end > d))
                               | ((s == "5") & sup.notna() & (sup > d)))
    bo_sung = (rec <= d) & (((s == "5") & (sup.isna() | (sup <= d))) | s.isin(["6", "8"]))
    landed = stopped_before_the_period | ~((s == "8") & end.notna() & (end < t))
    counted = rows[(da_xu_ly | tra_lai | dang_xu_ly | bo_sung) & landed].index
    in_period = (rec >= t) & (rec <= d)
    direct = s.notna() & rows["channel"].isin(["1", "3"])
    if not null_channel_in_neither:
        direct = direct | rows["channel"].isna()
    flags = pd.DataFrame({
        "unit_code": rows["unit_code"],
        "received_total": True,
        "received_online": in_period & (rows["channel"] == "2"),
        "received_direct_postal": in_period & direct,
        "carried_over": (rec < t) & (s.isin(["2", "4", "5", "6", "8"])
                                     | (s.isin(["9", "10", "7"]) & end.notna() & (end >= t))),
        "resolved_total": da_xu_ly | tra_lai,
        "resolved_early": da_xu_ly & due.notna() & (end < due),
        "resolved_on_time": (da_xu_ly & (due.isna() | (end == due))) | tra_lai,
        "resolved_late": da_xu_ly & due.notna() & (end > due),
        "pending_total": dang_xu_ly | bo_sung,
        "pending_within_due": (dang_xu_ly & (due.isna() | (due >= d))) | bo_sung,
        "pending_overdue": dang_xu_ly & due.notna() & (due < d),
    }).loc[counted]
    return flags.groupby("unit_code").sum().astype("int64")[FIGURES_PRINTED]


def _session_start(due: pd.Series) -> pd.Series:
    """BetimeUtils: the start of the due half-day session (07:00 for a due time in 07:00–11:30,
    13:00 for one in 13:30–17:00, else 00:00), keeping the due time's seconds."""
    minutes = due.dt.hour * 60 + due.dt.minute
    hour = pd.Series(0, index=due.index).where(~minutes.between(420, 690), 7).where(~minutes.between(810, 1020), 13)
    return due.dt.normalize() + pd.to_timedelta(hour, unit="h") + pd.to_timedelta(due.dt.second, unit="s")


def opencps_report(db: Path, unit_ids: Path, period: Period, faithful: bool = True,
                   cancelled_before_the_period: bool = True) -> pd.DataFrame:
    """The statistics engine on opencps_dossier (datetimes stored in GMT, shown in local time):
    per unit. `faithful` keeps its strict bounds (T0 < receive, T0 < release < T1 with T1 the last
    day's 23:59:59) and cancelled dossiers pending for ever; without it, whole local days and a
    cancelled dossier ending at its cancellingDate. Without `cancelled_before_the_period`, the
    dossiers cancelled before the period, which no landing window holds, are left out."""
    rows = _read(db, """SELECT govAgencyCode, dossierStatus AS status, online_ AS online, receiveDate AS received,
                               dueDate AS due, releaseDate AS released, finishDate AS finished,
                               cancellingDate AS cancelled
                        FROM opencps_dossier WHERE dossierStatus <> 'denied' AND receiveDate IS NOT NULL""")
    with open(unit_ids, encoding="utf-8", newline="") as fh:
        codes = {r["govAgencyCode"]: r["unit_code"] for r in csv.DictReader(fh)}
    rows["unit_code"] = rows["govAgencyCode"].map(codes)
    for c in ("received", "due", "released", "finished", "cancelled"):
        rows[c] = pd.to_datetime(rows[c]) + pd.Timedelta(hours=7)
    t0 = pd.Timestamp(period.start)
    t1 = pd.Timestamp(period.end) + pd.Timedelta(hours=23, minutes=59, seconds=59)
    after = pd.Timestamp(period.end) + pd.Timedelta(days=1)
    rec, rel, fin, due, s = rows["received"], rows["released"], rows["finished"], rows["due"], rows["status"]
    if not faithful:  # a cancelled dossier ends when it was cancelled
        rel = rel.where(s != "cancelled", rows["cancelled"])
    fetched = ((rec >= t0) & (rec <= t1)) | ((rec < t0) & ((rel >= t0) | ((fin >= t0) & (fin <= t1)) | rel.isna()))
    if not cancelled_before_the_period:
        fetched &= ~((s == "cancelled") & (rows["cancelled"] < t0))
    new = (rec > t0) if faithful else (rec >= t0)
    released = ((rel > t0) & (rel < t1)) if faithful else ((rel >= t0) & (rel < after))
    released &= s != "cancelled"
    session = _session_start(due)
    processing = (rel.isna() | (rel > t1)) & ~s.isin(["waiting", "receiving"])
    overdue = due.notna() & (due <= t1)
    flags = pd.DataFrame({
        "unit_code": rows["unit_code"],
        "received_total": True,
        "received_online": new & (rows["online"] == 1),
        "received_direct_postal": new & (rows["online"] != 1),
        "carried_over": ~new,
        "resolved_total": released,
        "resolved_early": released & (due.isna() | (rel < session)),
        "resolved_on_time": released & due.notna() & (rel >= session) & (rel <= due),
        "resolved_late": released & due.notna() & (rel > due),
        "pending_total": processing,
        "pending_within_due": processing & ~overdue,
        "pending_overdue": processing & overdue,
    })[fetched]
    return flags.groupby("unit_code").sum().astype("int64")[FIGURES_PRINTED]
