"""The bad-input corpus (tests/data/bad_inputs, made by tests/data/make_bad_inputs.py, plus a
real zip bomb and a file over the size limit made here): every bad input gives an error or a
finding naming the file (or source, page, record), sheet, row and column; files refused whole
are in quarantine with their reason, rejected records in the source's quarantine file; every
good input beside them lands whole, and its records go through canonicalize."""
import json
import shutil
import sqlite3
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq
import pytest

from extractors import spreadsheet
from extractors.base import SourceDataError
from extractors.registry import extract_source, landed_source, landed_sources
from tthc.landing import Manifest, landed_path
from tthc.config import Source, load_settings
from simulator.generate import AGENCY_TABLE
from transforms.canonicalize import canonical_dossiers, self_reported_figures
from validations.dossier_records import RECORD_CHECKS, record_counts

CORPUS = Path(__file__).resolve().parent / "data" / "bad_inputs"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
PERIOD = "2024-Q2"
PERSONAL = ("Riêng", "0912", "Kín", "0011")  # seeded names, phones, ID numbers
BOMB, HUGE = "Bieu06_01350.xlsx", "Bieu06_01351.xlsx"
MADE_HERE = {BOMB: "expands", HUGE: "more than the 20971520 a Biểu 06 can be (registry option max_file_bytes)"}


def test_the_corpus_has_at_least_30_bad_inputs_of_every_kind():
    sheets = [n for n, e in EXPECTED["spreadsheets"].items() if e.get("errors") or e.get("refused")]
    records = list(EXPECTED["api"]["records"]) + list(EXPECTED["api"]["pages"]) + list(EXPECTED["db"]["rows"])
    assert len(sheets) + len(MADE_HERE) + len(records) >= 30
    stored = {p.name for p in (CORPUS / "spreadsheets").iterdir()}
    assert stored == set(EXPECTED["spreadsheets"])


# --- spreadsheets ------------------------------------------------------------------------------

def make_zip_bomb(path: Path) -> None:
    """A real one: 50 MB of one repeated byte deflated to about 50 KB, as the sheet of an .xlsx."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            block = b"<c>0</c>" * (1 << 17)
            for _ in range(50):
                fh.write(block)


def make_huge(path: Path) -> None:
    with open(path, "wb") as fh:  # sparse: no disk blocks for the hole
        fh.write(b"PK\x03\x04")
        fh.truncate(spreadsheet.MAX_FILE_BYTES + 1)


@pytest.fixture(scope="module")
def sheets_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_sheets")
    inbox = root / "inbox" / PERIOD
    inbox.mkdir(parents=True)
    for name in EXPECTED["spreadsheets"]:
        shutil.copy2(CORPUS / "spreadsheets" / name, inbox / name)
    make_zip_bomb(inbox / BOMB)
    make_huge(inbox / HUGE)
    opened: list[str] = []
    settings = load_settings()
    source = settings.source("commune_spreadsheets")
    source = Source(source.id, source.kind, {**source.spec, "path": str(root / "inbox")})
    period = settings.period(PERIOD)
    with pytest.MonkeyPatch.context() as mp:  # which files the workbook readers were given
        calamine, openpyxl_load = spreadsheet.CalamineWorkbook.from_path, spreadsheet.load_workbook
        mp.setattr(spreadsheet, "CalamineWorkbook", type("Spy", (), {
            "from_path": staticmethod(lambda p: (opened.append(Path(p).name), calamine(p))[1])}))
        mp.setattr(spreadsheet, "load_workbook", lambda p, **kw: (opened.append(Path(p).name), openpyxl_load(p, **kw))[1])
        path = extract_source(source, period, root / "var", "bad", settings)
    manifest = Manifest.read(path)
    rows = pq.read_table(path.parent / manifest.files[0]["path"]).to_pylist()
    _, findings = self_reported_figures([landed_source(source, period, root / "var", manifest)], period,
                                        root / "figures.parquet", root / "totals.parquet")
    return manifest, rows, root / "var" / "quarantine" / PERIOD / source.id, opened, findings


@pytest.mark.parametrize("name", sorted(EXPECTED["spreadsheets"]) + sorted(MADE_HERE))
def test_each_bad_file_is_named_and_the_good_figures_land(sheets_run, name):
    manifest, rows, quarantine, _, findings = sheets_run
    expected = EXPECTED["spreadsheets"].get(name) or {"refused": MADE_HERE[name]}
    mine = [r for r in rows if r["file"] == name]
    errors = [e for e in manifest.errors if e["file"] == name]
    located = [f for f in findings if f.check_id == "extract.unreadable_input" and f.location.startswith(name)]
    assert len(located) == len(errors)  # every error is a finding of the run, located
    if "refused" in expected:
        assert mine == []
        (error,) = errors
        assert expected["refused"] in error["message"] and error["message"].startswith(name), error["message"]
        assert (quarantine / name).exists() and error["quarantined"] == str(quarantine / name)
        assert expected["refused"] in (quarantine / f"{name}.reason.txt").read_text(encoding="utf-8")
        assert [f.severity for f in located] == ["critical"]
        return
    assert not (quarantine / name).exists()
    assert {r["unit_code"] for r in mine} == {expected["unit"]}
    fields = {r["field_code"]: r for r in mine if not r["is_total"]}
    assert set(fields) == set(expected["fields"])
    for code, figures in expected["fields"].items():  # every figure of a good cell is there
        assert {k: fields[code][k] for k in figures} == figures, code
    assert len(errors) == len(expected["errors"]), [e["message"] for e in errors]
    for row, column, text in expected["errors"]:
        assert any(e["row"] == row and e["column"] == column and text in e["message"]
                   and e["sheet"] in ("Biểu 06", Path(name).stem)
                   for e in errors), (row, column, text, [(e["row"], e["column"], e["message"]) for e in errors])
        assert any(f"row {row}, column {column}" in f.location for f in located)


def test_the_zip_bomb_and_the_huge_file_are_never_opened(sheets_run):
    _, _, quarantine, opened, _ = sheets_run
    assert BOMB not in opened and HUGE not in opened and "Bieu06_01312.xlsx" not in opened
    assert "Bieu06_01301.xlsx" in opened  # the spy sees the files that are read
    assert (quarantine / BOMB).stat().st_size < 1_000_000


def test_the_size_limits_are_registry_options(tmp_path):
    settings = load_settings()
    inbox = tmp_path / "inbox" / PERIOD
    inbox.mkdir(parents=True)
    shutil.copy2(CORPUS / "spreadsheets" / "Bieu06_01301.xlsx", inbox)
    make_zip_bomb(inbox / BOMB)
    source = settings.source("commune_spreadsheets")
    source = Source(source.id, source.kind, {**source.spec, "path": str(tmp_path / "inbox"), "max_file_bytes": 4096,
                                             "max_ratio": 5000})
    manifest = Manifest.read(extract_source(source, settings.period(PERIOD), tmp_path / "var", "r", settings))
    messages = sorted(e["message"] for e in manifest.errors)
    assert manifest.rows == 0 and len(messages) == 2
    assert all("more than the 4096 a Biểu 06 can be (registry option max_file_bytes)" in m for m in messages)


# --- the portal API ----------------------------------------------------------------------------

class Pages(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        page = parse_qs(urlparse(self.path).query).get("page", ["1"])[0]
        first = self.server.pages.get("1")
        total = first.get("total") if isinstance(first, dict) else 0
        body = json.dumps(self.server.pages.get(page, {"total": total, "page": int(page), "data": []}),
                          ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    server.pages = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_PORTAL_DVC", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.server_address[1], "password": "t",
         "extra": {"auth_type": "bearer"}}))
    yield server
    server.shutdown()


def portal_source(page_size: int) -> Source:
    return Source("portal_dvc", "http_api", {
        "connection_id": "tthc_portal_dvc", "endpoint": "/api/v1/hoso", "page_size": page_size, "timeout_seconds": 2,
        "retries": {"attempts": 1, "backoff_seconds": 0.01, "backoff_max_seconds": 0.01, "jitter_seconds": 0,
                    "budget_seconds": 5}})


@pytest.fixture
def agency_db(tmp_path, monkeypatch):
    path = tmp_path / "agency.sqlite"
    con = sqlite3.connect(path)
    con.executescript(AGENCY_TABLE.replace("CREATE UNIQUE INDEX", "CREATE INDEX"))  # two rows have no so_hs
    rows = json.loads((CORPUS / "db" / "hs_hoso_rows.json").read_text(encoding="utf-8"))
    names = list(rows[0])
    con.executemany(f"INSERT INTO hs_hoso ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    [[r[n] for n in names] for r in rows])
    con.commit()
    con.close()
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_bad_records_and_rows_are_named_quarantined_and_reported_and_no_good_record_is_lost(
        api_server, agency_db, var, tmp_path):
    settings = load_settings()
    period = settings.period(PERIOD)
    api, db = EXPECTED["api"], EXPECTED["db"]
    api_server.pages = json.loads((CORPUS / "api" / "portal_pages.json").read_text(encoding="utf-8"))
    landed = {}
    for source in (portal_source(api["page_size"]), settings.source("agency_db_xd_tnmt")):
        landed[source.id] = Manifest.read(extract_source(source, period, var, "bad", settings))
    # the extractors: rejected records named by source, page and record (or table and column)
    rejected = {"portal_dvc": {k: e for k, e in api["records"].items() if "rejected" in e},
                "agency_db_xd_tnmt": {k: e for k, e in db["rows"].items() if "rejected" in e}}
    for source_id, wanted in rejected.items():
        manifest = landed[source_id]
        assert len(manifest.errors) == len(wanted), [e["message"] for e in manifest.errors]
        for case in wanted.values():
            where = f"page {case['page']} record {case['index']}: " if source_id == "portal_dvc" else "table 'hs_hoso'"
            assert any(case["rejected"] in e["message"] and where in e["message"] and source_id in e["message"]
                       for e in manifest.errors), (case, [e["message"] for e in manifest.errors])
        quarantined = Path(manifest.errors[0]["quarantined"])
        assert quarantined.parent == var / "quarantine" / PERIOD / source_id
        lines = quarantined.read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(wanted) and all(json.loads(line)["reason"] for line in lines)
        assert Path(f"{quarantined}.reason.txt").exists()
        assert not any(p in quarantined.read_text(encoding="utf-8") for p in PERSONAL)
    # every good record landed; the records with bad values land too, for canonicalize to report
    for source_id, key, spec in (("portal_dvc", "MaHoSo", api), ("agency_db_xd_tnmt", "dossier_id", db)):
        table = pq.read_table(landed_path(var, period, source_id, landed[source_id].files))
        ids = set(table.column(key).to_pylist())
        assert set(spec["good_ids"]) <= ids
        cases = spec["records"] if source_id == "portal_dvc" else spec["rows"]
        assert len(ids) == len(spec["good_ids"]) + sum("rejected" not in c for c in cases.values())
    # canonicalize: each bad value is a finding naming the source, the column and the dossier
    out = tmp_path / "dossiers.parquet"
    # canonicalize reads the registry's entry (its status and channel codes), as a run does
    count, findings = canonical_dossiers([landed_source(settings.source(s), period, var, m) for s, m in landed.items()],
                                         period, out)
    canonical = pq.read_table(out).to_pylist()
    by_source = {s: {r["dossier_id"] for r in canonical if r["source_id"] == s} for s in landed}
    assert set(api["good_ids"]) <= by_source["portal_dvc"] and set(db["good_ids"]) <= by_source["agency_db_xd_tnmt"]
    assert count == len(canonical)
    for source_id, cases in (("portal_dvc", api["records"]), ("agency_db_xd_tnmt", db["rows"])):
        mine = [f for f in findings if f.source_id == source_id]
        assert len([f for f in mine if f.check_id == "extract.rejected_record"]) == len(rejected[source_id])
        for case in cases.values():
            if "finding" not in case:
                continue
            for column in case["columns"]:
                assert any(f.check_id == case["finding"] and f.columns == [column] and case["text"] in f.message
                           and column in f.location for f in mine), (source_id, case, column,
                                                                      [(f.check_id, f.columns, f.message) for f in mine])
    # validation: record checks name the dossiers
    counts = record_counts(out, period, [f["code"] for f in settings.fields])
    for case in db["rows"].values():
        if "check" in case:
            column = RECORD_CHECKS[case["check"]][0]
            row = counts[counts.source_id == "agency_db_xd_tnmt"]
            assert row[column].sum() >= 1
            assert any(case["text"] in list(ex) for ex in row[f"ex_{column}"]), case


@pytest.mark.parametrize("name", sorted(EXPECTED["api"]["pages"]))
def test_a_bad_page_fails_its_source_clearly_and_keeps_the_last_landing_and_the_other_sources(
        api_server, var, name):
    settings = load_settings()
    period = settings.period(PERIOD)
    api = EXPECTED["api"]
    source = portal_source(api["page_size"])
    api_server.pages = json.loads((CORPUS / "api" / "portal_pages.json").read_text(encoding="utf-8"))
    first = extract_source(source, period, var, "good", settings)
    landed_bytes = (first.parent / "dossiers.parquet").read_bytes()
    inbox = var.parent / "inbox" / PERIOD
    inbox.mkdir(parents=True)
    shutil.copy2(CORPUS / "spreadsheets" / "Bieu06_01301.xlsx", inbox)
    sheets = settings.source("commune_spreadsheets")
    sheets = Source(sheets.id, sheets.kind, {**sheets.spec, "path": str(var.parent / "inbox")})
    api_server.pages = json.loads((CORPUS / "api" / name).read_text(encoding="utf-8"))
    with pytest.raises(SourceDataError) as failure:
        extract_source(source, period, var, "bad", settings)
    message = str(failure.value)
    assert api["pages"][name]["error"] in message and "portal_dvc" in message and "page 1" in message
    assert (first.parent / "dossiers.parquet").read_bytes() == landed_bytes  # nothing landed is lost
    extract_source(sheets, period, var, "bad", settings)  # the run goes on with the other sources
    landed, missing = landed_sources(settings, period, var)
    stale = {s.source_id: s.stale for s in landed}
    landed = {s.source_id: s.manifest for s in landed}
    assert "commune_spreadsheets" in landed and landed["commune_spreadsheets"].rows == 3
    assert "portal_dvc" not in missing  # kept on the previous landing, marked stale
    assert api["pages"][name]["error"] in stale["portal_dvc"]["failure"]
