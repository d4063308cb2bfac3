"""Write the sample sources of docs/sample-sources.md: a province's one-stop-shop API data, the
other vendors' databases (simulator/vendors.py for Tân Dân and OpenCPS), the communes' Biểu 06
workbooks, and the ground truth behind them.

Same seed and scale give the same bytes in every data file, so that a pipeline run on the
sample can be compared with an earlier one. The folder is built next to its destination and
swapped in at the end, so a reader never sees half a sample.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import sqlite3
import sys
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tthc.config import Settings, load_settings, var_dir
from tthc.model import CHANNELS, DOSSIER_SCHEMA
from tthc.form import FIGURES
from tthc.periods import Period, quarter
from simulator import vendors, vocab
from simulator.dossiers import DAY, NEVER, RESULT_VARIANTS, Dossiers, pause_moments, seconds, simulate
from simulator.figures import commune_spreadsheets
from simulator.personal import Applicants, applicants
from simulator.workbooks import write_workbooks
from simulator.world import AGENCY, OPENCPS, PORTAL, SERVED_BY, SPREADSHEETS, TANDAN, World, build_world

WARM_UP = "2023-Q4"
QUARTERS = ("2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")
HORIZON = datetime(2025, 12, 31, 23, 59, 59)
TOKEN_FILE = "server.token"
PERSONAL_VALUES_PER_KIND = 60
PORTAL_ROW_GROUP = 1 << 22  # one group: the server then holds one chunk, which take() needs to be fast

DEFECT_COLUMNS = ("defect_id", "kind", "source_id", "period", "unit_code", "field_code", "column",
                  "true_value", "reported_value", "detail")
DEFECT_KINDS = ("typing_error", "text_number", "missing_report", "carried_over_mismatch", "portal_duplicate",
                "soft_deleted", "unresolved_unit", "utc_boundary")

PORTAL_SCHEMA = pa.schema([
    ("MaHoSo", pa.string()), ("MaTTHC", pa.string()), ("TenTTHC", pa.string()),
    ("MaLinhVuc", pa.string()), ("TenLinhVuc", pa.string()), ("MaCoQuan", pa.string()),
    ("KenhThucHien", pa.int32()), ("NgayTiepNhan", pa.string()), ("NgayHenTra", pa.string()),
    ("NgayKetThucXuLy", pa.string()), ("NgayTra", pa.string()), ("NgayCapNhat", pa.string()),
    ("TrangThaiHoSo", pa.int32()), ("PhiLePhi", pa.int64()), ("DuocThanhToanTrucTuyen", pa.int32()),
    ("DanhSachGiayToKetQua", pa.string()),
    ("ChuHoSo", pa.string()), ("SoGiayToChuHoSo", pa.string()), ("SoDienThoai", pa.string()),
    ("DiaChi", pa.string()), ("Email", pa.string()),
])

AGENCY_TABLE = """
CREATE TABLE hs_hoso (
    id INTEGER PRIMARY KEY,
    so_hs TEXT,
    ma_tthc TEXT,
    linh_vuc TEXT,
    don_vi TEXT,
    hinh_thuc TEXT,
    ngay_nhan TEXT,
    han_tra TEXT,
    ngay_xong TEXT,
    ngay_tra TEXT,
    trang_thai TEXT,
    le_phi INTEGER,
    tt_online INTEGER,
    so_hoa_kq INTEGER,
    cap_nhat TEXT,
    nguoi_nop TEXT,
    cccd TEXT,
    sdt TEXT,
    dia_chi TEXT
);
CREATE UNIQUE INDEX ux_hs_hoso_so_hs ON hs_hoso (so_hs);
CREATE INDEX ix_hs_hoso_ngay_nhan ON hs_hoso (ngay_nhan);
CREATE INDEX ix_hs_hoso_cap_nhat ON hs_hoso (cap_nhat);
"""
AGENCY_STATUS = {1: "MOI", 2: "DA_NHAN", 3: "TU_CHOI", 4: "DANG_XL", 5: "BO_SUNG", 6: "CHO_PHI",
                 7: "RUT", 8: "DUNG", 9: "XONG", 10: "DA_TRA"}
AGENCY_CHANNEL = ("TRUCTIEP", "TRUCTUYEN", "BUUCHINH")


def sample_periods() -> list[Period]:
    """The warm-up quarter, then the quarters the sample reports on."""
    return [quarter(label, "calendar_quarter") for label in (WARM_UP, *QUARTERS)]


def generate(out_dir: Path, seed: int = 2024, scale: float = 1.0, settings: Settings | None = None) -> dict:
    """Write a sample to `out_dir` (replacing it) and return what sample.json says."""
    if not scale > 0:
        raise ValueError(f"scale {scale!r}: expected a positive number")
    settings = settings or load_settings()
    out_dir = Path(out_dir).resolve()
    build = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    try:
        info = _build(build, seed, scale, settings)
        _keep_token(out_dir, build)
        _replace(out_dir, build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return info


def _build(root: Path, seed: int, scale: float, settings: Settings) -> dict:
    # a sixth stream for the vendor databases: the first five draw what they drew before
    world_rng, dossier_rng, personal_rng, report_rng, pick_rng, vendor_rng = np.random.default_rng(seed).spawn(6)
    night_rng, vendor_files_rng = vendor_rng.spawn(2)
    world = build_world(settings, world_rng)
    periods = sample_periods()
    dossiers = simulate(world, periods, HORIZON, scale, dossier_rng)
    dossiers, moves = vendors.night_moments(world, dossiers, periods, night_rng)
    ids = _dossier_ids(world, dossiers)
    order = np.asarray(pc.sort_indices(ids))
    dossiers, ids = dossiers.take(order), ids.take(pa.array(order))
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    moves = [{**move, "index": int(position[move["index"]])} for move in moves]
    people = applicants(world, dossiers.unit, dossiers.received, seconds(world.reform_date), personal_rng)

    reported = commune_spreadsheets(world, dossiers, periods[1:], report_rng)
    portal = np.flatnonzero(dossiers.served_by == SERVED_BY.index(PORTAL))
    agency = np.flatnonzero(dossiers.served_by == SERVED_BY.index(AGENCY))
    agency = agency[np.argsort(dossiers.received[agency], kind="stable")]
    for folder in ("portal", "agency_db", "ground_truth"):
        (root / folder).mkdir()
    # the workbooks take their worker processes while this one writes the record sources
    with ThreadPoolExecutor(max_workers=1) as background:
        workbooks = background.submit(write_workbooks, root, reported.workbooks)
        _write_parquet(_portal_table(world, _as_left_at_handover(world, dossiers.take(portal)), ids.take(pa.array(portal)),
                                     people.take(portal)),
                       root / "portal" / "dossiers.parquet", row_group_size=PORTAL_ROW_GROUP)
        _write_agency(root / "agency_db" / "agency.sqlite", world, dossiers.take(agency), ids.take(pa.array(agency)),
                      people.take(agency))
        _write_parquet(_truth_table(world, dossiers, ids), root / "ground_truth" / "dossiers.parquet")
        own = vendors.write(root, settings, world, dossiers, ids, people, periods, moves, vendor_files_rng)
        _write_parquet(_figures_table(reported.figures), root / "ground_truth" / "spreadsheet_figures.parquet")
        defects = reported.defects + own.defects
        for i, defect in enumerate(own.defects, start=len(reported.defects) + 1):
            defect["defect_id"] = f"D{i:05d}"
        _write_defects(root / "ground_truth" / "defects.csv", defects)
        _write_personal_values(root / "ground_truth" / "personal_values.txt", world, people,
                               [portal, agency, *own.personal_rows.values()], pick_rng)
        workbooks.result()

    info = _info(seed, scale, world, periods, dossiers, reported, defects, own)
    (root / "sample.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return info


def _keep_token(out_dir: Path, build: Path) -> None:
    """Keep the server token of the sample being replaced, so that connections configured
    with it keep working; a new sample gets a fresh one."""
    old = out_dir / TOKEN_FILE
    token = old.read_text(encoding="utf-8").strip() if old.is_file() else ""
    path = build / TOKEN_FILE
    path.write_text((token or secrets.token_urlsafe(32)) + "\n", encoding="utf-8")
    path.chmod(0o600)


def _replace(out_dir: Path, build: Path) -> None:
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    build.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- values on the wire


def _digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


def _stamps(moments: np.ndarray) -> pa.Array:
    """`yyyyMMddHHmmss` strings, null for NEVER; by arithmetic, as strftime is slow."""
    known = moments != NEVER
    safe = np.where(known, moments, 0)
    days = (safe // DAY).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    tod = safe % DAY
    number = ((year * 100 + month) * 100 + day) * 1_000_000 + (tod // 3600) * 10_000 + (tod % 3600 // 60) * 100 + tod % 60
    return pc.cast(pa.array(number, mask=~known), pa.string())


def _timestamps(moments: np.ndarray) -> pa.Array:
    known = moments != NEVER
    return pa.array(np.where(known, moments, 0).astype("datetime64[s]"), mask=~known, type=pa.timestamp("s"))


def _dossier_ids(world: World, d: Dossiers) -> pa.Array:
    """MaHoSo `<unit>-<yymmdd>-<nnnn>` numbered per unit and day (paper dossiers take numbers
    too, so the portal's are not consecutive); the agency database numbers per unit and year:
    `<unit>.<yyyy>.<nnnnnn>`."""
    day = d.received // DAY
    year = day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    agency = d.served_by == SERVED_BY.index(AGENCY)
    group = np.where(agency, year, day)
    order = np.lexsort((d.received, group, d.unit))
    starts = np.r_[True, (d.unit[order][1:] != d.unit[order][:-1]) | (group[order][1:] != group[order][:-1])]
    first = np.flatnonzero(starts)
    rank = np.arange(len(d)) - np.repeat(first, np.diff(np.r_[first, len(d)]))
    number = np.empty(len(d), dtype=np.int64)
    number[order] = rank + 1
    unit_code = pa.array(world.units["unit_code"].to_numpy()[d.unit], pa.string())
    yymmdd = _stamps(d.received)
    portal_id = pc.binary_join_element_wise(unit_code, pc.utf8_slice_codeunits(yymmdd, 2, 8), _digits(number, 4), "-")
    agency_id = pc.binary_join_element_wise(unit_code, _digits(year, 4), _digits(number, 6), ".")
    return pc.if_else(pa.array(agency), agency_id, portal_id)


def _result_lists(world: World) -> np.ndarray:
    """DanhSachGiayToKetQua of every (procedure, variant) as JSON text."""
    table = np.empty((len(world.procedures), len(RESULT_VARIANTS)), dtype=object)
    for p, result in enumerate(world.procedures["result"]):
        for v, (first, second, second_digitised) in enumerate(RESULT_VARIANTS):
            docs = [] if first is None else [{"TenGiayTo": result, "DuocSoHoa": first}]
            if second:
                docs.append({"TenGiayTo": vocab.SECOND_RESULT_DOCUMENT, "DuocSoHoa": int(second_digitised)})
            table[p, v] = json.dumps(docs, ensure_ascii=False)
    return table


def _as_left_at_handover(world: World, d: Dossiers) -> Dossiers:
    """A dossier handed over on the reform to a unit served by another software (a district's, in a field
    the province gave to such a department) stays in the portal as it was at the hand-over: in progress,
    under the old unit's code, last updated then; the successor's software carries it on."""
    away = (d.handed_to >= 0) & (world.served_by[np.maximum(d.handed_to, 0)] != SERVED_BY.index(PORTAL))
    if not away.any():
        return d
    return replace(d, status=np.where(away, np.int16(4), d.status).astype(np.int16),
                   finished=np.where(away, NEVER, d.finished), returned=np.where(away, NEVER, d.returned),
                   updated=np.where(away, d.handed_at, d.updated),
                   result_documents=np.where(away, 0, d.result_documents).astype(np.int8),
                   digitised=d.digitised & ~away)


def _portal_table(world: World, d: Dossiers, ids: pa.Array, people: Applicants) -> pa.Table:
    procedures, fields = world.procedures, world.fields
    field_of = procedures["field"].to_numpy()[d.procedure]
    return pa.table({
        "MaHoSo": ids,
        "MaTTHC": procedures["code"].to_numpy()[d.procedure],
        "TenTTHC": procedures["name"].to_numpy()[d.procedure],
        "MaLinhVuc": fields["code"].to_numpy()[field_of],
        "TenLinhVuc": fields["name"].to_numpy()[field_of],
        "MaCoQuan": world.units["unit_code"].to_numpy()[d.unit],
        "KenhThucHien": pa.array(d.channel.astype(np.int32) + 1, mask=d.channel_missing_portal),
        "NgayTiepNhan": _stamps(d.received),
        "NgayHenTra": _stamps(d.due),
        "NgayKetThucXuLy": _stamps(d.finished),
        "NgayTra": _stamps(d.returned),
        "NgayCapNhat": _stamps(d.updated),
        "TrangThaiHoSo": d.status.astype(np.int32),
        "PhiLePhi": d.fee,
        "DuocThanhToanTrucTuyen": pa.array(d.payment_gateway.astype(np.int32), mask=~d.paid_online),
        "DanhSachGiayToKetQua": _result_lists(world)[d.procedure, d.result_documents],
        "ChuHoSo": people.name,
        "SoGiayToChuHoSo": people.id_number,
        "SoDienThoai": people.phone,
        "DiaChi": people.address,
        "Email": people.email,
    }, schema=PORTAL_SCHEMA)


def _truth_table(world: World, d: Dossiers, ids: pa.Array) -> pa.Table:
    """Every true dossier in the canonical model; paper-only ones have source_id `none`. A dossier pending
    at an old unit on the reform keeps that unit as `unit_code`, with `handed_over_to` and `handed_over_at`."""
    served_by = np.array(SERVED_BY, dtype=object)[d.served_by]
    columns = {
        "source_id": served_by,
        "dossier_id": ids,
        "procedure_code": world.procedures["code"].to_numpy()[d.procedure],
        "field_code": world.fields["code"].to_numpy()[d.field],
        "unit_code": world.units["unit_code"].to_numpy()[d.unit],
        "channel": np.array(CHANNELS, dtype=object)[d.channel],
        "received_at": _timestamps(d.received),
        "due_at": _timestamps(d.due),
        "finished_at": _timestamps(d.finished),
        "returned_at": _timestamps(d.returned),
        "paused_at": _timestamps(pause_moments(d.status, d.received, d.updated, d.finished)),
        "status": d.status,
        "fee_amount": d.fee,
        "paid_online": d.paid_online,
        "results_digitised": d.digitised,
        "updated_at": _timestamps(d.updated),
        "entered_at": pa.nulls(len(d.unit), pa.timestamp("s")),
    }
    handed = d.handed_to >= 0
    handed_to = pa.array(world.units["unit_code"].to_numpy()[np.where(handed, d.handed_to, 0)], pa.string(),
                         mask=~handed)
    # the software that carries a handed-over dossier on: the successor's (another than the old unit's when
    # a district's went to a department served by its own software)
    handed_in = pa.array(np.array(SERVED_BY, dtype=object)[world.served_by[np.where(handed, d.handed_to, 0)]],
                         pa.string(), mask=~handed)
    schema = (DOSSIER_SCHEMA.append(pa.field("served_by", pa.string(), nullable=False))
              .append(pa.field("handed_over_to", pa.string())).append(pa.field("handed_over_at", pa.timestamp("s")))
              .append(pa.field("handed_over_in", pa.string())))
    return pa.table({**columns, "served_by": served_by, "handed_over_to": handed_to,
                     "handed_over_at": _timestamps(d.handed_at), "handed_over_in": handed_in}, schema=schema)


def _write_parquet(table: pa.Table, path: Path, row_group_size: int = 256 * 1024) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)


def _write_agency(path: Path, world: World, d: Dossiers, ids: pa.Array, people: Applicants) -> None:
    def text(moments):
        known = moments != NEVER
        iso = np.where(known, moments, 0).astype("datetime64[s]").astype(str)
        return [s.replace("T", " ") if k else None for s, k in zip(iso.tolist(), known.tolist())]

    channel = [None if missing else AGENCY_CHANNEL[c]
               for c, missing in zip(d.channel.tolist(), d.channel_missing_agency.tolist())]
    rows = zip(
        range(1, len(d) + 1), ids.to_pylist(),
        world.procedures["code"].to_numpy()[d.procedure].tolist(),
        world.fields["code"].to_numpy()[d.field].tolist(),
        world.units["unit_code"].to_numpy()[d.unit].tolist(),
        channel, text(d.received), text(d.due), text(d.finished), text(d.returned),
        [AGENCY_STATUS[s] for s in d.status.tolist()], d.fee.tolist(),
        d.paid_online.astype(int).tolist(), d.digitised.astype(int).tolist(), text(d.updated),
        people.name.to_pylist(), people.id_number.to_pylist(), people.phone.to_pylist(), people.address.to_pylist(),
    )
    connection = sqlite3.connect(path)
    try:
        connection.executescript(AGENCY_TABLE)
        connection.executemany(f"INSERT INTO hs_hoso VALUES ({', '.join('?' * 19)})", rows)
        connection.commit()
    finally:
        connection.close()


def _figures_table(figures: list[dict]) -> pa.Table:
    schema = pa.schema([
        ("unit_code", pa.string()), ("unit_name", pa.string()), ("unit_valid_from", pa.date32()),
        ("period", pa.string()), ("period_start", pa.date32()), ("period_end", pa.date32()),
        ("field_code", pa.string()), ("field_name", pa.string()), ("filed", pa.bool_()),
        ("workbook", pa.string()), ("sheet_row", pa.int32()), ("formula_totals", pa.bool_()),
        *[(f"true_{name}", pa.int64()) for name in FIGURES],
        *[(f"reported_{name}", pa.int64()) for name in FIGURES],
    ])
    return pa.Table.from_pylist(figures, schema=schema)


def _write_defects(path: Path, defects: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=DEFECT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(defects)


def _write_personal_values(path: Path, world: World, people: Applicants, sources: list[np.ndarray],
                           rng: np.random.Generator) -> None:
    """Names, ID numbers and phones from every record source (the portal first, then the agency
    database, which has no e-mails, then the vendor databases), for leak tests. Names that also
    occur in non-personal text (a commune named after a hero) are left out, since finding them in
    an output proves nothing."""
    public = " | ".join([*world.units["unit_name"], *world.fields["name"], *world.procedures["name"],
                         *world.procedures["result"]])
    picked = []
    portal, agency, *own = sources
    every = ("name", "id_number", "phone", "email")
    for rows, kinds in ((portal, every), (agency, ("name", "id_number", "phone")), *((rows, every) for rows in own)):
        if rows.size == 0:
            continue
        take = pa.array(rng.choice(rows, min(PERSONAL_VALUES_PER_KIND, rows.size), replace=False))
        for kind in kinds:
            picked.extend(v for v in getattr(people, kind).take(take).to_pylist() if v and v not in public)
    unique = list(dict.fromkeys(picked))
    path.write_text("".join(f"{v}\n" for v in unique), encoding="utf-8")


def _info(seed: int, scale: float, world: World, periods: list[Period], d: Dossiers, reported, defects: list[dict],
          own: vendors.VendorOutput) -> dict:
    by_source = {name: int((d.served_by == i).sum()) for i, name in enumerate(SERVED_BY)}
    by_period = {
        period.label: {name: int(((d.period == p) & (d.served_by == i)).sum()) for i, name in enumerate(SERVED_BY)}
        for p, period in enumerate(periods)
    }
    kinds = [defect["kind"] for defect in defects]
    return {
        "seed": seed,
        "scale": scale,
        "province_code": world.province_code,
        "province_name": world.province_name,
        "reform_date": world.reform_date.isoformat(),
        "horizon": HORIZON.isoformat(),
        "warm_up_period": periods[0].as_dict(),
        "periods": [p.as_dict() for p in periods[1:]],
        "counts": {
            "dossiers": len(d),
            "by_source": by_source,
            "by_received_period": by_period,
            SPREADSHEETS: {
                "commune_quarters": len({(r["unit_code"], r["unit_valid_from"], r["period"]) for r in reported.figures}),
                "workbooks": len(reported.workbooks),
            },
            "defects": {kind: kinds.count(kind) for kind in DEFECT_KINDS},
            "vendor_tables": own.rows,
        },
        "files": {
            PORTAL: "portal/dossiers.parquet",
            AGENCY: "agency_db/agency.sqlite",
            **({TANDAN: vendors.TANDAN_FILE} if TANDAN in own.personal_rows else {}),
            **({OPENCPS: vendors.OPENCPS_FILE} if OPENCPS in own.personal_rows else {}),
            SPREADSHEETS: "spreadsheets",
            "ground_truth": "ground_truth",
        },
        "token_file": TOKEN_FILE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Write the sample sources.")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None, help="default: <var dir>/sample")
    args = parser.parse_args(argv)
    out = args.out or var_dir() / "sample"
    info = generate(out, seed=args.seed, scale=args.scale)
    print(f"{out}: {info['counts']['dossiers']} dossiers, {info['counts'][SPREADSHEETS]['workbooks']} workbooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
