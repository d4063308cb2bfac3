"""The sample sources (docs/sample-sources.md): deterministic, consistent with their ground
truth, and served the way the spec says. Small scale, so the whole module runs in seconds."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tthc.config import REPO_ROOT
from tthc.form import FIGURES, SUM_IDENTITIES
from simulator.generate import generate
from simulator.server import serve

SEED = 7
SCALE = 0.02
QUARTERS = ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
FIRST_QUARTERS_OF_A_UNIT_SYSTEM = {"2024-Q1", "2025-Q3"}
VALUE_DEFECTS = {"typing_error", "carried_over_mismatch"}
TOTAL_OF = {part: total for total, parts in SUM_IDENTITIES.items() for part in parts}
PERSONAL_COLUMNS = ["ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "DiaChi", "Email"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample") / "sample"
    return out, generate(out, seed=SEED, scale=SCALE)


@pytest.fixture(scope="module")
def root(sample) -> Path:
    return sample[0]


@pytest.fixture(scope="module")
def figures(root) -> pd.DataFrame:
    return pd.read_parquet(root / "ground_truth" / "spreadsheet_figures.parquet")


@pytest.fixture(scope="module")
def defects(root) -> pd.DataFrame:
    return pd.read_csv(root / "ground_truth" / "defects.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def truth(root) -> pd.DataFrame:
    return pd.read_parquet(root / "ground_truth" / "dossiers.parquet")


@pytest.fixture(scope="module")
def portal(root) -> pd.DataFrame:
    return pd.read_parquet(root / "portal" / "dossiers.parquet")


def data_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "server.token"
    }


# ------------------------------------------------------------------ the folder


def test_sample_folder_has_every_file_of_the_spec(root, sample):
    info = sample[1]
    for name in ("sample.json", "portal/dossiers.parquet", "agency_db/agency.sqlite", "tandan/tandan.sqlite",
                 "opencps/opencps.sqlite", "ground_truth/vendor_bieu06.csv", "ground_truth/vendor_exclusions.csv",
                 "ground_truth/vendor_unresolved_units.csv",
                 "ground_truth/dossiers.parquet", "ground_truth/spreadsheet_figures.parquet",
                 "ground_truth/defects.csv", "ground_truth/personal_values.txt"):
        assert (root / name).is_file(), name
    assert sorted(p.name for p in (root / "spreadsheets").iterdir()) == QUARTERS
    assert json.loads((root / "sample.json").read_text(encoding="utf-8")) == info
    assert info["seed"] == SEED and info["scale"] == SCALE
    assert [p["label"] for p in info["periods"]] == QUARTERS
    assert info["warm_up_period"]["label"] == "2023-Q4"
    assert (root / info["token_file"]).read_text().strip()
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "build folders left behind"


def test_same_seed_and_scale_give_the_same_bytes_in_a_replaced_folder(root, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    (again / "stale.txt").write_text("from an older sample")
    (again / "server.token").write_text("kept-token\n")
    generate(again, seed=SEED, scale=SCALE)
    assert data_files(again) == data_files(root)
    assert (again / "server.token").read_text().strip() == "kept-token"


# ------------------------------------------------------------------ ground truth


def test_true_figures_satisfy_every_identity(figures):
    for total, parts in SUM_IDENTITIES.items():
        assert (figures[f"true_{total}"] == sum(figures[f"true_{p}"] for p in parts)).all(), total
    balance = figures["true_resolved_total"] + figures["true_pending_total"] + figures["true_returned_withdrawn"]
    assert (figures["true_received_total"] == balance).all()
    assert (figures[[f"true_{name}" for name in FIGURES]] >= 0).all().all()
    assert figures["true_received_total"].sum() > 0


def test_carried_over_equals_previous_pending_for_units_in_both_quarters(figures):
    previous = {later: earlier for earlier, later in zip(QUARTERS, QUARTERS[1:])}
    key = ["unit_code", "unit_valid_from", "field_code"]
    earlier = figures[key + ["period", "true_pending_total"]].rename(columns={"period": "previous"})
    later = figures[key + ["period", "true_carried_over"]].assign(previous=lambda f: f["period"].map(previous))
    pairs = later.merge(earlier, on=key + ["previous"])
    assert set(pairs["period"]) == set(QUARTERS[1:]) - {"2025-Q3"}  # 2025-Q3 starts the new unit system
    assert (pairs["true_carried_over"] == pairs["true_pending_total"]).all()
    assert pairs["true_carried_over"].sum() > 0


@pytest.mark.parametrize("period, start, end", [("2024-Q1", "2024-01-01", "2024-03-31"), ("2025-Q2", "2025-04-01", "2025-06-30"),
                                               ("2025-Q3", "2025-07-01", "2025-09-30"), ("2025-Q4", "2025-10-01", "2025-12-31")])
def test_true_figures_are_those_of_all_the_communes_dossiers(figures, truth, period, start, end):
    """Recomputed here from the ground-truth dossiers, paper-only ones included."""
    start, after = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    reform = pd.Timestamp("2025-07-01")
    if start < reform:
        d = truth[truth["received_at"] < reform]
    else:  # the new communes' own dossiers and those handed over to them
        d = truth[(truth["received_at"] >= reform) | truth["handed_over_to"].notna()]
        d = d.assign(unit_code=d["handed_over_to"].fillna(d["unit_code"]))
    # a district's dossier in a field no commune handles, handed to a commune, is in its records, not its workbook
    d = d[d["unit_code"].str.fullmatch(r"\d{5}") & d["field_code"].isin(set(figures["field_code"]))
          & ~d["status"].isin([1, 3])]
    finished = d["finished_at"].fillna(pd.Timestamp("2100-01-01"))
    finished_day, due_day = finished.dt.normalize(), d["due_at"].dt.normalize()
    received_in = (d["received_at"] >= start) & (d["received_at"] < after)
    finished_in = (finished >= start) & (finished < after)
    resolved = finished_in & d["status"].isin([9, 10])
    pending = (d["received_at"] < after) & (finished >= after)
    overdue = (due_day < after) & ~d["status"].isin([5, 6])  # paused: within due
    flags = pd.DataFrame({
        "received_online": received_in & (d["channel"] == "online"),
        "received_direct_postal": received_in & (d["channel"] != "online"),
        "carried_over": (d["received_at"] < start) & (finished >= start),
        "resolved_early": resolved & (finished_day < due_day),
        "resolved_on_time": resolved & (finished_day == due_day),
        "resolved_late": resolved & (finished_day > due_day),
        "pending_within_due": pending & ~overdue,
        "pending_overdue": pending & overdue,
        "returned_withdrawn": finished_in & d["status"].isin([7, 8]),
        "unit_code": d["unit_code"], "field_code": d["field_code"],
    })
    counted = flags.groupby(["unit_code", "field_code"]).sum().astype(int)
    rows = figures[figures["period"] == period].set_index(["unit_code", "field_code"])
    expected = counted.reindex(rows.index, fill_value=0)
    assert expected.to_numpy().sum() == counted.to_numpy().sum(), "dossiers of a unit or field without a row"
    for name in expected.columns:
        assert (rows[f"true_{name}"] == expected[name]).all(), name
    for total, parts in SUM_IDENTITIES.items():
        assert (rows[f"true_{total}"] == expected[list(parts)].sum(axis=1)).all(), total


def test_reported_figures_differ_only_where_defects_say(figures, defects):
    allowed = set()
    for d in defects[defects["kind"].isin(VALUE_DEFECTS)].itertuples():
        allowed.add((d.period, d.unit_code, d.field_code, d.column))
        if d.column in TOTAL_OF:
            allowed.add((d.period, d.unit_code, d.field_code, TOTAL_OF[d.column]))
    filed = figures[figures["filed"]]
    for name in FIGURES:
        differs = filed[filed[f"reported_{name}"] != filed[f"true_{name}"]]
        for row in differs.itertuples():
            assert (row.period, row.unit_code, row.field_code, name) in allowed, (row.workbook, name)

    indexed = filed.set_index(["period", "unit_code", "field_code"])
    for d in defects[defects["kind"].isin(VALUE_DEFECTS)].itertuples():
        row = indexed.loc[(d.period, d.unit_code, d.field_code)]
        assert row[f"true_{d.column}"] == int(d.true_value)
        assert row[f"reported_{d.column}"] == int(d.reported_value) != int(d.true_value)
        if d.kind == "carried_over_mismatch":
            moved = row["reported_received_total"] - row["true_received_total"]
            assert moved == int(d.reported_value) - int(d.true_value)


def test_missing_reports_are_exactly_the_unfiled_commune_quarters(root, figures, defects):
    missing = defects[defects["kind"] == "missing_report"]
    unfiled = figures[~figures["filed"]]
    assert set(zip(missing["period"], missing["unit_code"])) == set(zip(unfiled["period"], unfiled["unit_code"]))
    assert unfiled[[f"reported_{name}" for name in FIGURES]].isna().all().all()
    for period, unit in zip(missing["period"], missing["unit_code"]):
        assert not (root / "spreadsheets" / period / f"Bieu06_{unit}.xlsx").exists()
    written = {p.relative_to(root).as_posix() for p in (root / "spreadsheets").rglob("*.xlsx")}
    assert written == set(figures.loc[figures["filed"], "workbook"])


def test_every_defect_kind_is_seeded_and_described(defects):
    kinds = set(defects["kind"])
    assert {"typing_error", "text_number", "missing_report", "carried_over_mismatch"} <= kinds
    assert "portal_duplicate" not in kinds
    assert defects["defect_id"].is_unique
    spreadsheet_kinds = {"typing_error", "text_number", "missing_report", "carried_over_mismatch"}
    assert (defects.loc[defects["kind"].isin(spreadsheet_kinds), "source_id"] == "commune_spreadsheets").all()
    # the vendor databases' defects (tests/test_vendor_sample.py)
    assert set(defects.loc[~defects["kind"].isin(spreadsheet_kinds), "source_id"]) <= {"tandan_departments",
                                                                                       "opencps_departments"}
    mismatches = defects[defects["kind"] == "carried_over_mismatch"]
    assert not set(mismatches["period"]) & FIRST_QUARTERS_OF_A_UNIT_SYSTEM
    assert (mismatches["column"] == "carried_over").all()
    texts = defects[defects["kind"] == "text_number"]
    for d in texts.itertuples():
        assert int(re.sub(r"[ .]", "", d.reported_value)) == int(d.true_value)
    assert texts["reported_value"].str.contains(" ").any()


# ------------------------------------------------------------------ workbooks


def _workbook_with(figures: pd.DataFrame, defects: pd.DataFrame, formula_totals: bool) -> tuple[str, pd.DataFrame]:
    with_text = defects[defects["kind"] == "text_number"][["period", "unit_code"]].drop_duplicates()
    candidates = figures[figures["filed"] & (figures["formula_totals"] == formula_totals)].merge(with_text)
    path = candidates["workbook"].iloc[0]
    return path, figures[figures["workbook"] == path].sort_values("sheet_row")


@pytest.mark.parametrize("formula_totals", [True, False])
def test_workbook_layout_and_cached_values(root, figures, defects, formula_totals):
    path, rows = _workbook_with(figures, defects, formula_totals)
    first, last = int(rows["sheet_row"].min()), int(rows["sheet_row"].max())
    unit, name = rows["unit_code"].iloc[0], rows["unit_name"].iloc[0]

    sheet = openpyxl.load_workbook(root / path)["Biểu 06"]
    assert sheet["A1"].value == "ỦY BAN NHÂN DÂN TỈNH CAO BẰNG"
    assert sheet["F1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert sheet["A2"].value == f"UBND {name}"
    assert sheet["A4"].value == "BIỂU 06. TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH"
    assert re.fullmatch(r"Kỳ báo cáo: Quý (I|II|III|IV) năm \d{4} "
                        r"\(Từ ngày \d\d/\d\d/\d{4} đến ngày \d\d/\d\d/\d{4}\)", sheet["A5"].value)
    assert sheet["A6"].value == f"Đơn vị báo cáo: UBND {name} (mã ĐVHC: {unit})"
    assert sheet["A7"].value == "Đơn vị tính: Số hồ sơ TTHC"
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A4:N4", "A9:A11", "B9:B11", "C9:F9", "C10:C11", "D10:E10", "F10:F11", "G9:J9", "K9:M9", "N9:N11"} <= merged
    header = {cell: sheet[cell].value for cell in ("A9", "B9", "C9", "C10", "D10", "D11", "E11", "F10", "G9", "G10",
                                                   "H10", "I10", "J10", "K9", "K10", "L10", "M10", "N9")}
    assert header == {
        "A9": "STT", "B9": "Lĩnh vực giải quyết", "C9": "Số hồ sơ nhận giải quyết", "C10": "Tổng số",
        "D10": "Trong kỳ", "D11": "Trực tuyến", "E11": "Trực tiếp, dịch vụ bưu chính", "F10": "Từ kỳ trước",
        "G9": "Số hồ sơ đã giải quyết", "G10": "Tổng số", "H10": "Trước hạn", "I10": "Đúng hạn", "J10": "Quá hạn",
        "K9": "Số hồ sơ đang giải quyết", "K10": "Tổng số", "L10": "Trong hạn", "M10": "Quá hạn",
        "N9": "Số hồ sơ trả lại, rút, dừng xử lý",
    }
    assert [sheet.cell(12, c).value for c in range(1, 15)] == [f"({n})" for n in range(1, 15)]
    assert sheet["B13"].value == "Tổng cộng"
    assert sheet["C13"].value == f"=SUM(C{first}:C{last})"
    assert [sheet.cell(r, 2).value for r in range(first, last + 1)] == rows["field_name"].tolist()
    assert (sheet[f"C{first}"].value == f"=D{first}+E{first}+F{first}") == formula_totals
    below = [sheet.cell(r, c).value for r in range(last + 1, last + 8) for c in range(1, 15)]
    assert any(str(v).startswith("Ghi chú:") for v in below if v)
    assert "NGƯỜI LẬP BIỂU" in below and "CHỦ TỊCH" in below

    cached = openpyxl.load_workbook(root / path, data_only=True)["Biểu 06"]
    has_text = False
    for row in rows.itertuples():
        for i, figure in enumerate(FIGURES):
            value = cached.cell(int(row.sheet_row), 3 + i).value
            if isinstance(value, str):
                has_text = True
                value = int(re.sub(r"[ .]", "", value))
            assert value == getattr(row, f"reported_{figure}"), (path, row.sheet_row, figure)
    assert has_text
    for i, figure in enumerate(FIGURES):
        assert cached.cell(13, 3 + i).value == rows[f"reported_{figure}"].sum()


# ------------------------------------------------------------------ record sources


def test_portal_and_agency_hold_the_served_dossiers(root, truth, portal):
    assert portal["MaHoSo"].is_unique and truth["dossier_id"].is_unique
    assert set(portal["MaHoSo"]) == set(truth.loc[truth["served_by"] == "portal_dvc", "dossier_id"])
    with sqlite3.connect(root / "agency_db" / "agency.sqlite") as db:
        agency = pd.read_sql("SELECT so_hs, don_vi, hinh_thuc, trang_thai FROM hs_hoso", db)
    assert set(agency["so_hs"]) == set(truth.loc[truth["served_by"] == "agency_db_xd_tnmt", "dossier_id"])
    assert set(agency["don_vi"]) == {"000.00.07.H04", "000.00.08.H04"}
    assert set(agency["trang_thai"]) <= {"MOI", "DA_NHAN", "TU_CHOI", "DANG_XL", "BO_SUNG", "CHO_PHI", "RUT", "DUNG",
                                         "XONG", "DA_TRA"}
    paper = truth[truth["served_by"] == "none"]
    assert paper["unit_code"].str.fullmatch(r"\d{5}").all()
    assert (paper["received_at"] < pd.Timestamp("2025-07-01")).all()
    assert (truth["source_id"] == truth["served_by"]).all()

    wire = portal.set_index("MaHoSo")
    canonical = truth.set_index("dossier_id").loc[wire.index]
    in_person = canonical["channel"] == "in_person"
    assert wire["KenhThucHien"].isna().any()
    assert in_person[wire["KenhThucHien"].isna()].all()
    assert (wire["NgayTiepNhan"] == canonical["received_at"].dt.strftime("%Y%m%d%H%M%S")).all()
    assert (wire["TrangThaiHoSo"] == canonical["status"]).all()


def test_old_units_hand_their_pending_dossiers_over_to_their_successors(truth, portal, figures):
    reform = pd.Timestamp("2025-07-01")
    old = truth[(truth["received_at"] < reform) & ~truth["unit_code"].str.contains(".", regex=False)]
    open_at_reform = old["finished_at"].isna() | (old["finished_at"] >= reform)
    handed = truth[truth["handed_over_to"].notna()]
    assert len(handed) > 0 and set(handed["dossier_id"]) == set(old.loc[open_at_reform, "dossier_id"])
    assert (handed["handed_over_at"].dt.normalize() == reform).all()
    # to new communes, but a district's in the fields the province gave to a department (config/province.yaml)
    to_departments = {"GD": "000.00.13.H04", "CTH": "000.00.04.H04"}
    expected_department = handed["field_code"].map(to_departments).where(handed["unit_code"].str.len() == 3)
    to_department = expected_department.notna()
    assert (handed.loc[to_department, "handed_over_to"] == expected_department[to_department]).all()
    assert handed.loc[~to_department, "handed_over_to"].str.fullmatch(r"\d{5}").all()
    assert (handed["served_by"] == "portal_dvc").all()  # a paper one is entered by its successor
    # Sở Giáo dục's dossiers are in Tân Dân: the dossier moves to that software, the others stay in the portal
    moved = handed["handed_over_in"] == "tandan_departments"
    assert (moved == (handed["handed_over_to"] == "000.00.13.H04")).all()
    assert (handed.loc[~moved, "handed_over_in"] == "portal_dvc").all()
    # the portal keeps the old unit's code and the dossier's id and dates; a dossier gone to another software
    # stays there as it was at the hand-over, in progress
    wire = portal.set_index("MaHoSo").loc[handed["dossier_id"]]
    assert (wire["MaCoQuan"].to_numpy() == handed["unit_code"].to_numpy()).all()
    left = wire[moved.to_numpy()]
    assert (left["TrangThaiHoSo"] == 4).all() and left["NgayKetThucXuLy"].isna().all()
    # communes' pending at the end of 2025-Q2 and their successors' carried-over at the start of 2025-Q3
    q2, q3 = figures[figures["period"] == "2025-Q2"], figures[figures["period"] == "2025-Q3"]
    from_communes = handed[handed["unit_code"].str.len() == 5]
    assert q2["true_pending_total"].sum() == len(from_communes)
    from_districts = handed[(handed["unit_code"].str.len() == 3) & handed["field_code"].isin(set(q3["field_code"]))
                            & ~to_department]
    assert q3["true_carried_over"].sum() == len(from_communes) + len(from_districts)
    departments = truth[truth["unit_code"].str.contains(".", regex=False)]
    open_at_reform = departments["finished_at"].isna() | (departments["finished_at"] >= reform)
    assert departments["handed_over_to"].isna().all()
    assert len(departments[(departments["received_at"] < reform) & open_at_reform]) > 0


def test_personal_data_is_in_the_portal_and_not_in_ground_truth(root, truth, portal):
    assert portal[PERSONAL_COLUMNS[:-1]].notna().all().all()
    assert portal["SoGiayToChuHoSo"].str.fullmatch(r"\d{12}").all()
    assert portal["SoDienThoai"].str.fullmatch(r"09\d{8}").all()
    assert (portal["ChuHoSo"].str.split().str.len() >= 3).all()
    assert portal["DiaChi"].str.endswith("Tỉnh Cao Bằng").all()
    assert not set(PERSONAL_COLUMNS) & set(truth.columns)

    values = (root / "ground_truth" / "personal_values.txt").read_text(encoding="utf-8").splitlines()
    assert len(values) > 100
    with sqlite3.connect(root / "agency_db" / "agency.sqlite") as db:
        agency = pd.read_sql("SELECT nguoi_nop, cccd, sdt FROM hs_hoso", db)
    with sqlite3.connect(root / "tandan" / "tandan.sqlite") as db:
        tandan = pd.read_sql("SELECT ChuHoSo, SoGiayToChuHoSo, SoDienThoaiChuHoSo, EmailChuHoSo FROM HoSos", db)
    with sqlite3.connect(root / "opencps" / "opencps.sqlite") as db:
        opencps = pd.read_sql("SELECT applicantName, applicantIdNo, contactTelNo, contactEmail FROM opencps_dossier", db)
    present = set(portal[PERSONAL_COLUMNS].stack()) | set(agency.stack()) | set(tandan.stack()) | set(opencps.stack())
    assert set(values) <= present
    for vendor in (tandan, opencps):
        assert set(values) & set(vendor.stack()), "the vendor databases' personal data is in the leak list"


# ------------------------------------------------------------------ server


@pytest.fixture(scope="module")
def server(root):
    token = secrets.token_urlsafe(16)
    with serve(root, token) as running:
        yield running, token


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8"))


def test_health_needs_no_token(server):
    assert _get(server[0].url + "/health") == (200, {"status": "ok"})


@pytest.mark.parametrize("token", [None, "wrong"])
def test_dossiers_need_the_token(server, token):
    status, body = _get(server[0].url + "/api/v1/hoso?tuNgay=20240101&denNgay=20240331", token)
    assert status == 401 and body["error"] == "unauthorized"


@pytest.mark.parametrize("query, parameter", [
    ("denNgay=20240331", "tuNgay"),
    ("tuNgay=2024-01-01&denNgay=20240331", "tuNgay"),
    ("tuNgay=20240101&denNgay=20240230", "denNgay"),
    ("tuNgay=20240401&denNgay=20240331", "denNgay"),
    ("tuNgay=20240101&denNgay=20240331&page=0", "page"),
    ("tuNgay=20240101&denNgay=20240331&page=x", "page"),
    ("tuNgay=20240101&denNgay=20240331&pageSize=5001", "pageSize"),
    ("tuNgay=20240101&denNgay=20240331&pageSize=0", "pageSize"),
])
def test_bad_parameters_answer_400_naming_them(server, query, parameter):
    running, token = server
    status, body = _get(f"{running.url}/api/v1/hoso?{query}", token)
    assert status == 400 and body["parameter"] == parameter and parameter in body["message"]


def test_paging_returns_every_dossier_of_the_window_once(server, portal):
    running, token = server
    received = pd.to_datetime(portal["NgayTiepNhan"], format="%Y%m%d%H%M%S")
    finished = pd.to_datetime(portal["NgayKetThucXuLy"], format="%Y%m%d%H%M%S")
    active = (received < pd.Timestamp("2024-07-01")) & (finished.isna() | (finished >= pd.Timestamp("2024-04-01")))
    expected = sorted(portal.loc[active, "MaHoSo"])

    seen, page = [], 1
    while True:
        status, body = _get(f"{running.url}/api/v1/hoso?tuNgay=20240401&denNgay=20240630&page={page}&pageSize=700", token)
        assert status == 200 and body["total"] == len(expected) and body["page"] == page and body["pageSize"] == 700
        if not body["data"]:
            break
        seen.extend(record["MaHoSo"] for record in body["data"])
        page += 1
    assert seen == expected
    assert page == -(-len(expected) // 700) + 1


def test_records_keep_the_wire_shape(server, portal):
    running, token = server
    status, body = _get(f"{running.url}/api/v1/hoso?tuNgay=20251001&denNgay=20251231&pageSize=50", token)
    assert status == 200
    record = body["data"][0]
    assert list(record) == list(portal.columns)
    assert isinstance(record["TrangThaiHoSo"], int) and isinstance(record["PhiLePhi"], int)
    assert isinstance(json.loads(record["DanhSachGiayToKetQua"]), list)
    assert running.faults == {}


def test_server_command_prints_its_url_and_stops_on_sigterm(root, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(secrets.token_urlsafe(16))
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.server", "--sample", str(root), "--port", "0", "--token-file", str(token_file)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), process.stderr.read() if not url else url
        assert _get(url + "/health") == (200, {"status": "ok"})
        status, _ = _get(url + "/api/v1/hoso?tuNgay=20240101&denNgay=20240102", token_file.read_text())
        assert status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
