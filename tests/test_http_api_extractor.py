"""The portal API extractor over real HTTP against the sample server, with faults switched
on. Each test asserts the exact set of dossier ids landed, or a clear failure with nothing
half-landed. Retry settings are small so that every fault test is bounded in time."""
import json
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extractors.base import SourceDataError, SourceUnavailable, watermark_path
from tthc.landing import Manifest
from tthc.portal import KEPT_FIELDS
from extractors.registry import extract_source, landed_sources
from tthc.config import Source, load_settings
from simulator.generate import PORTAL_SCHEMA
from simulator.server import serve

PERIOD = "2024-Q2"
TOKEN = "test-token"
PERSONAL = ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "DiaChi", "Email")
SPEC = {
    "endpoint": "/api/v1/hoso", "page_size": 40, "timeout_seconds": 0.5, "pagination": "page",
    "retries": {"attempts": 4, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "jitter_seconds": 0.01,
                "budget_seconds": 10},
    "incremental": {"overlap_minutes": 60},
}


def stamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y%m%d%H%M%S") if moment else None


def dossier(i: int, received: datetime, updated: datetime, status: int = 4, finished: datetime | None = None) -> dict:
    return {
        "MaHoSo": f"H{i:06d}", "MaTTHC": "1.000001", "TenTTHC": "Đăng ký khai sinh", "MaLinhVuc": "HT",
        "TenLinhVuc": "Hộ tịch", "MaCoQuan": "01279", "KenhThucHien": [1, 2, 3, None][i % 4],
        "NgayTiepNhan": stamp(received), "NgayHenTra": stamp(received + timedelta(days=5)),
        "NgayKetThucXuLy": stamp(finished), "NgayTra": None, "NgayCapNhat": stamp(updated), "TrangThaiHoSo": status,
        "PhiLePhi": 0, "DuocThanhToanTrucTuyen": None,
        "DanhSachGiayToKetQua": json.dumps([{"TenGiayTo": "Giấy khai sinh", "DuocSoHoa": i % 2}]),
        "ChuHoSo": f"Nguyễn Văn Riêng{i}", "SoGiayToChuHoSo": f"0792{i:08d}", "SoDienThoai": f"0912{i:06d}",
        "DiaChi": f"Số {i} phố Bí Mật", "Email": f"rieng{i}@example.vn",
    }


def base_records() -> list[dict]:
    """230 dossiers received in 2024-Q2 and 20 received after it."""
    start = datetime(2024, 4, 1, 8)
    inside = [dossier(2 * k, start + timedelta(hours=9 * k), start + timedelta(hours=9 * k, minutes=30))
              for k in range(230)]
    after = [dossier(i, datetime(2024, 8, 1, 8), datetime(2024, 8, 1, 9)) for i in range(1, 41, 2)]
    return inside + after


def write_portal(folder, records):
    (folder / "portal").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records, schema=PORTAL_SCHEMA), folder / "portal" / "dossiers.parquet")
    return folder


def window_ids(records) -> set[str]:
    return {r["MaHoSo"] for r in records if r["NgayTiepNhan"] < "20240701"}


@pytest.fixture
def portal(tmp_path, monkeypatch):
    records = base_records()
    server = serve(write_portal(tmp_path / "sample", records), TOKEN)
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "password": TOKEN,
         "extra": {"auth_type": "bearer"}}))
    yield server, records
    server.shutdown()


def run(var, **spec):
    settings = load_settings()
    source = Source("portal_dvc", "http_api", {**SPEC, "connection_id": "tthc_portal_dvc", **spec})
    path = extract_source(source, settings.period(PERIOD), var, "run", settings)
    manifest = Manifest.read(path)
    table = pq.read_table(path.parent / manifest.files[0]["path"])
    return manifest, table


def ids(table) -> list[str]:
    return table.column("MaHoSo").to_pylist()


@pytest.mark.parametrize("style", ["page", "cursor"])
def test_every_dossier_of_the_window_once_and_no_personal_data(portal, var, style):
    server, records = portal
    manifest, table = run(var, pagination=style)
    assert sorted(ids(table)) == ids(table) and set(ids(table)) == window_ids(records) and len(ids(table)) == 230
    assert table.column_names == list(KEPT_FIELDS)
    text = table.to_pandas().to_csv()
    assert not any(r[name] in text for r in records for name in PERSONAL)
    assert manifest.stats["pages"] == 6 and manifest.stats["reported_total"] == 230


def test_the_same_window_gives_the_same_file_in_either_pagination_style(portal, var):
    first, _ = run(var)
    again, _ = run(var)
    cursor, _ = run(var, pagination="cursor")
    assert first.files == again.files == cursor.files


@pytest.mark.parametrize("faults", [
    pytest.param([None, {"status": 503}, {"status": 500}, {"status": 502}], id="burst-of-5xx"),
    pytest.param([None, {"status": 429, "retry_after": 1}], id="429-retry-after"),
    pytest.param([None, {"slow": 1.5}], id="slower-than-the-timeout"),
    pytest.param([{"reset": True}, None, {"reset": True}], id="connection-resets"),
    pytest.param([None, None, {"truncate": True}], id="truncated-json"),
    pytest.param([None, {"cut": True}], id="body-cut-short"),
])
def test_transient_faults_are_retried_and_nothing_is_lost_or_doubled(portal, var, faults):
    server, records = portal
    server.faults["queue"] = list(faults)
    manifest, table = run(var)
    assert set(ids(table)) == window_ids(records) and len(ids(table)) == 230
    assert server.faults["queue"] == []
    assert server.api_requests == 6 + sum(1 for f in faults if f)


def test_a_source_that_stays_down_fails_clearly_and_keeps_the_previous_landing(portal, var):
    server, _ = portal
    manifest, _ = run(var)
    server.faults["queue"] = [None] + [{"status": 503}] * 10
    with pytest.raises(SourceUnavailable, match=r"portal_dvc: http://127\.0\.0\.1:\d+/api/v1/hoso page 2: HTTP 503"):
        run(var, incremental=None)
    folder = var / "landing" / PERIOD / "portal_dvc"
    assert sorted(p.name for p in folder.iterdir()) == ["dossiers.parquet", "failed.json", "manifest.json"]
    assert Manifest.read(folder / "manifest.json").files == manifest.files
    assert not list(folder.parent.glob(".staging-*"))
    landed, missing = landed_sources(load_settings(), load_settings().period(PERIOD), var)
    stale = {s.source_id: s for s in landed}["portal_dvc"]  # kept on its previous landing, marked stale
    assert "portal_dvc" not in missing and "HTTP 503" in stale.stale["failure"]
    assert stale.manifest.files == manifest.files


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(portal, var):
    server, _ = portal
    server.faults["queue"] = [{"status": 429, "retry_after": 3600}]
    with pytest.raises(SourceUnavailable, match=r"HTTP 429 \(Retry-After 3600\) still after retrying"):
        run(var)
    assert server.api_requests == 1
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


@pytest.mark.parametrize("spec, status, body", [
    ({"endpoint": "/api/v1/khong-co"}, 404, "no resource"),
    ({"page_size": 999999}, 400, "pageSize"),
])
def test_a_client_error_fails_at_once_with_the_body(portal, var, spec, status, body):
    server, _ = portal
    with pytest.raises(SourceUnavailable, match=f"HTTP {status}.*{body}"):
        run(var, **spec)
    assert server.api_requests <= 1


@pytest.mark.parametrize("style", ["page", "cursor"])
def test_records_inserted_while_paging_are_not_lost_nor_doubled(portal, var, style):
    server, records = portal
    early = sorted(window_ids(records))[:3]
    server.faults["drift"] = {"after_pages": 2, "appear": early}
    manifest, table = run(var, pagination=style)
    assert sorted(ids(table)) == sorted(window_ids(records)) and len(ids(table)) == 230
    assert manifest.stats["passes"] == 2 and "total changed" in manifest.stats["drift"][0]


def test_records_deleted_while_paging_shift_pages_and_are_detected(portal, var):
    server, records = portal
    gone = sorted(window_ids(records))[5:7]
    server.faults["drift"] = {"after_pages": 2, "vanish": gone}
    manifest, table = run(var)
    assert set(ids(table)) == window_ids(records) - set(gone) and len(ids(table)) == 228
    assert manifest.stats["passes"] == 2


def test_drift_on_every_pass_fails_with_nothing_landed(portal, var):
    server, records = portal
    server.faults["drift"] = {"after_pages": 2, "appear": sorted(window_ids(records))[:1]}
    with pytest.raises(SourceDataError, match="kept shifting while paging, nothing landed.*total changed"):
        run(var, max_passes=1)
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


def test_incremental_extraction_picks_up_late_updates_within_the_overlap(tmp_path, portal, var, monkeypatch):
    server, records = portal
    first, _ = run(var)
    assert first.stats["mode"] == "full"
    mark = json.loads(watermark_path(var, "portal_dvc").read_text())["periods"][PERIOD]
    newest = datetime.fromisoformat(mark["max_updated_at"])
    assert mark["landed_sha256"] == first.files[0]["sha256"]

    changed = [dict(r) for r in records]
    by_id = {r["MaHoSo"]: r for r in changed}
    by_id["H000010"].update(TrangThaiHoSo=9, NgayKetThucXuLy=stamp(newest + timedelta(days=1)),
                            NgayCapNhat=stamp(newest + timedelta(days=1)))  # an ordinary later update
    by_id["H000020"].update(TrangThaiHoSo=5, NgayCapNhat=stamp(newest - timedelta(minutes=30)))  # synced late
    by_id["H000030"].update(TrangThaiHoSo=8, NgayCapNhat=stamp(newest - timedelta(days=2)))  # older than the overlap
    changed.append(dossier(999, datetime(2024, 6, 30, 9), newest + timedelta(hours=2)))
    second_server = serve(write_portal(tmp_path / "changed", changed), TOKEN)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": second_server.port, "password": TOKEN}))
        incremental, table = run(var)
        rows = {r["MaHoSo"]: r for r in table.to_pylist()}
        # the three updated since the watermark, and the newest already landed (inside the overlap)
        assert incremental.stats["mode"] == "incremental" and incremental.stats["delta_rows"] == 4
        assert set(rows) == window_ids(changed) and len(rows) == 231
        assert rows["H000010"]["TrangThaiHoSo"] == "9" and rows["H000020"]["TrangThaiHoSo"] == "5"
        assert rows["H000030"]["TrangThaiHoSo"] == "4"  # outside the overlap: waits for a full extraction
        full_dir = tmp_path / "full"
        full_dir.mkdir()
        full, full_table = run(full_dir)
        assert {r["MaHoSo"]: r for r in full_table.to_pylist()}["H000030"]["TrangThaiHoSo"] == "8"
        assert full_table.num_rows == table.num_rows
    finally:
        second_server.shutdown()


# ------------------------------------------------------------------ completeness: a portal that lies about its pages

class MisbehavingPortal:
    """A small portal over `records` (the window's, sorted by MaHoSo) that misbehaves as told:
    `repeat` answers page 1 to every page, `cap` serves at most that many records a page,
    `total` False leaves the total out."""

    def __init__(self, records, repeat=False, cap=None, total=True):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread
        from urllib.parse import parse_qs, urlsplit

        rows = sorted((r for r in records if r["NgayTiepNhan"] < "20240701"), key=lambda r: r["MaHoSo"])
        portal = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                portal.requests += 1
                query = parse_qs(urlsplit(self.path).query)
                size = min(int(query["pageSize"][0]), cap or 10**9)
                page = 1 if repeat else int(query.get("page", ["1"])[0])
                body = {"page": page, "data": rows[(page - 1) * size:page * size]}
                if total:
                    body["total"] = len(rows)
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        Thread(target=self.server.serve_forever, daemon=True).start()

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def misbehaving(monkeypatch):
    started = []

    def start(**how):
        portal = MisbehavingPortal(base_records(), **how)
        started.append(portal)
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": portal.port, "password": TOKEN}))
        return portal

    yield start
    for portal in started:
        portal.shutdown()


@pytest.mark.parametrize("ids_sorted", [True, False])
def test_a_portal_repeating_one_page_fails_at_the_second_page_naming_the_repeated_ids(misbehaving, var, ids_sorted):
    portal = misbehaving(repeat=True)
    with pytest.raises(SourceDataError, match=r"page 2: every record of the page came before.*repeats pages "
                                              r"\(40 repeated ids: H000000, H000002, H000004, H000006, H000008, …\)"):
        run(var, ids_sorted=ids_sorted, max_passes=1)
    assert portal.requests <= 3
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


def test_paging_stops_at_max_pages(portal, var):
    server, _ = portal
    with pytest.raises(SourceUnavailable, match=r"still more pages after 3 \(max_pages\)"):
        run(var, max_pages=3)
    assert server.api_requests <= 4
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


def test_an_overall_time_budget_per_source_stops_a_slow_portal(portal, var):
    server, _ = portal
    server.faults["queue"] = [{"slow": 0.3}] * 20
    with pytest.raises(SourceUnavailable, match=r"overall time budget \(0\.5s, budget_seconds_total\) is spent"):
        run(var, budget_seconds_total=0.5)
    assert server.api_requests <= 4


def test_answers_without_a_total_fail_when_the_api_reports_totals(misbehaving, var):
    misbehaving(total=False)
    with pytest.raises(SourceDataError, match=r"portal_dvc: .* page 1: the API sends no total: cannot prove the "
                                              r"landing is complete"):
        run(var)
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


def test_without_totals_a_complete_window_still_lands(misbehaving, var):
    portal = misbehaving(total=False)
    manifest, table = run(var, reports_total=False)
    assert set(ids(table)) == window_ids(base_records()) and len(ids(table)) == 230
    assert portal.requests == 7  # no total: the short last page is checked by asking for the next, empty one


@pytest.mark.parametrize("total", [True, False])
def test_a_server_capping_the_page_size_fails_instead_of_truncating(misbehaving, var, total):
    misbehaving(cap=25, total=total)
    with pytest.raises(SourceDataError, match=r"25 records although 40 were asked.*page size differs"
                       if total else r"page 1 brought 25 records although 40 were asked and it was not the last"):
        run(var, reports_total=total)
    assert not (var / "landing" / PERIOD / "portal_dvc" / "dossiers.parquet").exists()


def test_a_full_extraction_far_smaller_than_the_previous_landing_fails_and_keeps_it(tmp_path, portal, var,
                                                                                     monkeypatch):
    first, _ = run(var, incremental=None)
    shrunk = [r for r in base_records() if r["MaHoSo"] < "H000200"]  # 100 of the window's 230
    smaller = serve(write_portal(tmp_path / "smaller", shrunk), TOKEN)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": smaller.port, "password": TOKEN}))
        with pytest.raises(SourceDataError, match=r"100 records extracted for the window, fewer than 50% of the "
                                                  r"230 of the previous landing"):
            run(var, incremental=None)
        folder = var / "landing" / PERIOD / "portal_dvc"
        assert Manifest.read(folder / "manifest.json").files == first.files
        landed, missing = landed_sources(load_settings(), load_settings().period(PERIOD), var)
        # the earlier, complete landing stays in use, marked stale with the reason
        portal = next(s for s in landed if s.source_id == "portal_dvc")
        assert "portal_dvc" not in missing and "fewer than 50%" in portal.stale["failure"]
        tolerant, table = run(var, incremental=None, max_shrink=0.6)  # within the registry's tolerance
        assert tolerant.rows == 100
    finally:
        smaller.shutdown()


def test_a_landed_file_changed_after_extraction_makes_the_source_missing(portal, var):
    manifest, table = run(var)
    path = var / "landing" / PERIOD / "portal_dvc" / manifest.files[0]["path"]
    pq.write_table(table.slice(0, 10), path)  # edited between the stages
    settings = load_settings()
    landed, missing = landed_sources(settings, settings.period(PERIOD), var)
    assert "portal_dvc" not in [s.source_id for s in landed]
    assert missing["portal_dvc"].startswith("landed file changed after extraction: sha256 ")
    assert f"≠ manifest {manifest.files[0]['sha256']}" in missing["portal_dvc"]
