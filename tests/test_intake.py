"""The units' intake over HTTP (Starlette's test client, no server): the form a unit downloads
is read back by the spreadsheet extractor as the unit's, for the period; a typing error is a
finding on its cell with the correction; a submission lands in the spreadsheet source's folder
atomically and a correction replaces it with its reason kept; bad uploads are refused in
Vietnamese and store nothing; one unit's link can neither read nor replace another's; the
board needs the province's link; the Airflow event's payload. The browser flow, screenshots
and the next run's use of a submission: tests/test_intake_browser.py."""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import httpx
import openpyxl
import pytest
from starlette.testclient import TestClient

from extractors.spreadsheet import submission_note, submission_note_path, validation_rows
from intake.app import create_app
from intake.events import SUBMISSIONS_ASSET_URI, Announcer, correction_reason
from publishing.workbook import write_unit_form
from runner.late_corrections import reasons_by_period
from tests.support.intake_forms import FIRST_FIELD_ROW, TYPED, column, fill
from tthc.config import load_settings

pytestmark = pytest.mark.xdist_group("intake")  # the tests share one site, in this order

PERIOD = "2025-Q2"
UNIT, OTHER, THIRD = "01267", "01270", "01273"


class Recorded(Announcer):
    """An announcer that keeps what it would send (Airflow is not configured in these tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict] = []

    def announce(self, submission, unit_name, period):
        from intake.events import event_extra

        self.sent.append(event_extra(submission, unit_name, period))
        return self.sent[-1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("intake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTHC_VAR_DIR", str(root / "var"))
        patch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(root / "spreadsheets"))
        settings = load_settings()
        announcer = Recorded()
        app = create_app(settings, announcer=announcer)
        app.state.intake.options.uploads_per_minute = 1000  # the rate limit has its own test
        store = app.state.intake.store
        tokens = {code: store.issue("unit", code, PERIOD)[1] for code in (UNIT, OTHER, THIRD)}
        tokens["province"] = store.issue("province", settings.province_code, None)[1]
        with TestClient(app) as client:
            yield {"client": client, "tokens": tokens, "root": root, "settings": settings, "store": store,
                   "announcer": announcer, "inbox": root / "spreadsheets" / PERIOD, "app": app}


@pytest.fixture(scope="module")
def forms(site, tmp_path_factory):
    """The downloaded forms of the first two units, filled right, with a typing error, and blank."""
    folder = tmp_path_factory.mktemp("forms")
    client, tokens = site["client"], site["tokens"]
    made = {}
    for code in (UNIT, OTHER):
        answer = client.get(f"/u/{tokens[code]}/bieu-mau.xlsx")
        assert answer.status_code == 200
        made[f"{code}_blank"] = folder / f"{code}_blank.xlsx"
        made[f"{code}_blank"].write_bytes(answer.content)
        made[code] = folder / f"{code}.xlsx"
        made[f"{code}_totals"] = fill(made[f"{code}_blank"], made[code])
    made["typo"] = folder / "typo.xlsx"
    fill(made[f"{UNIT}_blank"], made["typo"], typo=("received_total", 3))  # 30 typed as 3
    return made


def check(site, code: str, path: Path | None = None, *, name: str | None = None, data: bytes | None = None):
    data = path.read_bytes() if data is None else data
    return site["client"].post(f"/u/{site['tokens'][code]}/kiem-tra",
                               files={"tep": (name or (path.name if path else "Bieu06.xlsx"), data)})


def check_id(page: str) -> str:
    return re.search(r'name="check_id" value="([^"]+)"', page).group(1)


def submit(site, code: str, key: str, **fields):
    return site["client"].post(f"/u/{site['tokens'][code]}/nop", data={"check_id": key, **fields},
                               follow_redirects=False)


def inbox_files(site) -> list[str]:
    inbox = site["inbox"]
    return sorted(p.name for p in inbox.iterdir() if not p.name.startswith(".")) if inbox.is_dir() else []


def test_the_form_is_the_units_for_the_period_with_totals_as_formulas(site, forms):
    sheet = openpyxl.load_workbook(forms[f"{UNIT}_blank"]).active
    title = " ".join(str(c.value) for row in sheet.iter_rows(max_row=6) for c in row if c.value)
    assert "Phường Sông Hiến (mã ĐVHC: 01267)" in title and "Từ ngày 01/04/2025 đến ngày 30/06/2025" in title
    assert sheet.cell(FIRST_FIELD_ROW, 2).value == "Hộ tịch"
    assert sheet.max_column == 14  # the form's columns (1) … (14); nothing a unit does not report
    r = FIRST_FIELD_ROW
    assert sheet.cell(r, column("received_total")).value == f"=D{r}+E{r}+F{r}"
    rows, findings, _ = validation_rows(forms[UNIT], site["settings"], quarter=site["settings"].period)
    assert {(r["unit_code"], str(r["period_start"]), str(r["period_end"])) for r in rows} == {(UNIT, "2025-04-01",
                                                                                                "2025-06-30")}
    fields = [r["field_code"] for r in rows if r["field_code"]]
    assert fields == [f["code"] for f in site["settings"].fields if "commune" in f["levels"]]
    total = next(r for r in rows if not r["field_code"])
    assert total["received_total"] == sum(forms[f"{UNIT}_totals"][p] for p in
                                          ("received_online", "received_direct_postal", "carried_over"))


def test_a_typing_error_is_shown_on_its_cell_with_the_correction_and_nothing_is_stored(site, forms):
    page = check(site, UNIT, forms["typo"])
    assert page.status_code == 200
    cell = re.search(r'<td id="o-HT-received_total" class="(\w+)"[^>]*>\s*([^<]*)<span class="suggest"> → (\d+)',
                     page.text)
    assert cell and cell.group(1) == "critical" and cell.group(2).strip() == "3" and cell.group(3) == "30"
    assert "Có thể gõ nhầm: Tổng số nhận giải quyết (3) 3 có lẽ là 30" in page.text
    assert "1 lỗi nghiêm trọng" in page.text or "lỗi nghiêm trọng</strong>" in page.text
    assert inbox_files(site) == [] and site["store"].current(PERIOD) == []
    refused = submit(site, UNIT, check_id(page.text))
    assert refused.status_code == 422 and "hãy sửa trong tệp rồi kiểm tra lại, hoặc ghi giải trình" in refused.text
    assert inbox_files(site) == []


def test_a_submission_lands_where_the_extractor_reads_and_a_correction_keeps_the_reason(site, forms):
    page = check(site, UNIT, forms[UNIT])
    assert page.status_code == 200 and "Không có lỗi nghiêm trọng" in page.text
    done = submit(site, UNIT, check_id(page.text))
    assert done.status_code == 303 and done.headers["location"].endswith("?da-nop=1")
    assert inbox_files(site) == ["Bieu06_01267.xlsx"]
    landed = site["inbox"] / "Bieu06_01267.xlsx"
    first = site["store"].current(PERIOD, UNIT)[0]
    assert first.sha256 == hashlib.sha256(forms[UNIT].read_bytes()).hexdigest() == hashlib.sha256(
        landed.read_bytes()).hexdigest()
    assert (first.file, first.criticals, first.explanation) == ("Bieu06_01267.xlsx", 0, None)
    assert submission_note(landed) is None  # nothing to explain
    assert json.loads(submission_note_path(landed).read_text())["sha256"] == first.sha256
    assert "Đã nộp" in site["client"].get(done.headers["location"]).text

    # a correction with a critical left: needs an explanation and a reason, keeps both and the replaced file
    page = check(site, UNIT, forms["typo"])
    assert submit(site, UNIT, check_id(page.text), giai_trinh="Số tổng đúng theo sổ").status_code == 422
    done = submit(site, UNIT, check_id(page.text), giai_trinh="Số tổng đúng theo sổ theo dõi",
                  ly_do_sua="nhập lại số nhận của lĩnh vực hộ tịch")
    assert done.status_code == 303
    history = site["store"].history(PERIOD, UNIT)
    assert [s.id for s in history] == [first.id, history[1].id] and history[1].replaces == first.id
    assert (history[1].criticals, history[1].correction_reason) == (2, "nhập lại số nhận của lĩnh vực hộ tịch")
    assert inbox_files(site) == ["Bieu06_01267.xlsx"]
    assert landed.read_bytes() == forms["typo"].read_bytes()
    # the explanation travels with the figures: the extractor lands it as a warning of the workbook
    note = submission_note(landed)
    assert note.unit_code == UNIT and note.file == "Bieu06_01267.xlsx"
    assert note.message.endswith("còn 2 lỗi nghiêm trọng khi nộp): Số tổng đúng theo sổ theo dõi")
    kept = list((site["root"] / "var" / "intake" / "replaced" / PERIOD / UNIT).iterdir())
    assert [p.read_bytes() for p in kept] == [forms[UNIT].read_bytes()]
    sent = site["announcer"].sent[-1]
    assert sent["period"] == PERIOD and sent["unit_code"] == UNIT and sent["replaces"] == first.id
    assert sent["reason"].startswith("late correction from Phường Sông Hiến (01267), received ")
    assert sent["reason"].endswith(": nhập lại số nhận của lĩnh vực hộ tịch")


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (40 << 20))
    return buffer.getvalue()


def _empty_workbook() -> bytes:
    buffer = io.BytesIO()
    openpyxl.Workbook().save(buffer)
    return buffer.getvalue()


BAD_UPLOADS = {
    "wrong period": ("2025-Q1 form", "Bieu06.xlsx", "nhưng đường dẫn này dùng để nộp kỳ 2025-Q2"),
    "another unit's form": ("other unit", "Bieu06.xlsx", "không phải của đơn vị bạn (mã 01267)"),
    "zip bomb": (_zip_bomb, "Bieu06.xlsx", "dấu hiệu “zip bomb”"),
    "50 MB file": (lambda: b"PK" + b"\0" * (50 << 20), "Bieu06.xlsx", "vượt giới hạn 20 MB"),
    "CSV in UTF-16 without BOM": (lambda: "STT,Lĩnh vực\n(1),(2)\n".encode("utf-16-le"), "Bieu06.csv",
                                  "Tệp CSV không đúng bảng mã"),
    "empty workbook": (_empty_workbook, "Bieu06.xlsx", "Không tìm thấy bảng Biểu 06 trong tệp"),
    "blank form": ("blank form", "Bieu06.xlsx", "Biểu chưa có số liệu"),
    "empty file": (lambda: b"", "Bieu06.xlsx", "Tệp tải lên rỗng"),
    "not a workbook": (lambda: b"%PDF-1.4", "Bieu06.pdf", "không phải Biểu 06 dạng Excel"),
    "personal data": ("personal", "Bieu06.xlsx", "có vẻ chứa thông tin cá nhân"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_are_refused_in_vietnamese_and_store_nothing(site, forms, tmp_path, case):
    make, name, expected = BAD_UPLOADS[case]
    before = (inbox_files(site), [s.id for s in site["store"].current(PERIOD)])
    if make == "2025-Q1 form":
        settings = site["settings"]
        q1 = settings.period("2025-Q1")
        blank = write_unit_form(tmp_path / "q1.xlsx", unit_code=UNIT, unit_name="Phường Sông Hiến", unit_level="commune",
                                period_start=q1.start, period_end=q1.end, period_label=q1.label,
                                fields=[f for f in settings.fields if "commune" in f["levels"]])
        data = (tmp_path / "q1_filled.xlsx", fill(blank, tmp_path / "q1_filled.xlsx"))[0].read_bytes()
    elif make == "other unit":
        data = forms[OTHER].read_bytes()
    elif make == "blank form":
        data = forms[f"{UNIT}_blank"].read_bytes()
    elif make == "personal":
        fill(forms[f"{UNIT}_blank"], tmp_path / "p.xlsx", note="Người nộp: Nguyễn Văn A, 0912345678")
        data = (tmp_path / "p.xlsx").read_bytes()
    else:
        data = make()
    page = check(site, THIRD if make == "other unit" else UNIT, name=name, data=data)
    if make == "other unit":  # the second unit's form sent with a third unit's link
        expected = "không phải của đơn vị bạn (mã 01273)"
    assert page.status_code == 422, page.text[:500]
    assert "Tệp chưa được nhận" in page.text and expected in page.text
    assert "Không có gì được lưu" in page.text
    assert (inbox_files(site), [s.id for s in site["store"].current(PERIOD)]) == before


def test_one_units_link_cannot_read_or_replace_anothers_submission(site, forms):
    client, tokens = site["client"], site["tokens"]
    page = check(site, UNIT, forms[UNIT])
    key = check_id(page.text)
    # the other unit's link with the first unit's checked upload: refused, nothing replaced
    before = site["inbox"].joinpath("Bieu06_01267.xlsx").read_bytes() if inbox_files(site) else None
    assert submit(site, OTHER, key).status_code == 409
    assert (site["inbox"].joinpath("Bieu06_01267.xlsx").read_bytes() if before else None) == before
    assert not site["inbox"].joinpath("Bieu06_01270.xlsx").exists()
    # the first unit's workbook uploaded through the other's link: another unit's form
    assert "không phải của đơn vị bạn (mã 01270)" in check(site, OTHER, forms[UNIT]).text
    # the other unit's page shows nothing of the first
    other = client.get(f"/u/{tokens[OTHER]}").text
    assert UNIT not in other and "Biểu đã nộp" not in other and "Phường Sông Bằng" in other
    # a unit's link is not the board's, the board's is not a unit's, a made-up or revoked one is nothing
    assert client.get(f"/tinh/{tokens[UNIT]}").status_code == 404
    assert client.get(f"/u/{tokens['province']}").status_code == 404
    assert client.get("/u/not-a-token").status_code == 404
    link, token = site["store"].issue("unit", OTHER, PERIOD)
    assert client.get(f"/u/{token}").status_code == 200
    site["store"].revoke(link.id)
    assert client.get(f"/u/{token}").status_code == 404
    stored = json.dumps(site["store"].links())
    assert token not in stored and all(t not in site["store"].path.read_bytes().decode("latin-1")
                                       for t in tokens.values())


def test_uploads_are_rate_limited_per_link(site, forms):
    options = site["app"].state.intake.options
    link, token = site["store"].issue("unit", THIRD, PERIOD)
    limit, options.uploads_per_minute = options.uploads_per_minute, 3
    try:
        answers = [site["client"].post(f"/u/{token}/kiem-tra", files={"tep": ("Bieu06.xlsx", b"")}).status_code
                   for _ in range(4)]
    finally:
        options.uploads_per_minute = limit
    assert answers == [422, 422, 422, 429]


def test_the_board_lists_who_sent_what_and_who_did_not(site, forms):
    client, tokens = site["client"], site["tokens"]
    page = check(site, OTHER, forms[OTHER])
    assert submit(site, OTHER, check_id(page.text)).status_code == 303
    board = client.get(f"/tinh/{tokens['province']}?ky={PERIOD}")
    assert board.status_code == 200
    row = re.search(r'<tr class="(\w+)" id="don-vi-01270">', board.text)
    assert row and row.group(1) == "late"  # 2025-Q2 was due on 05/07/2025
    assert re.search(r'<tr class="missing" id="don-vi-01273">', board.text)
    communes = site["app"].state.intake.board(site["settings"].period(PERIOD))
    # missing exactly where nothing was submitted (other tests of the module may submit too, in any order)
    assert all((r["status"] == "missing") == (r["submission"] is None) for r in communes)
    assert 1 <= sum(r["submission"] is not None for r in communes) < len(communes)
    # an explanation travels with its figures (the unit that explained is submitted by another test, if it ran here)
    for r in communes:
        if r["submission"] is not None and r["submission"].explanation:
            assert r["submission"].explanation in board.text


def test_the_airflow_event_is_posted_to_the_submissions_asset():
    calls = []

    def airflow(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, request.headers.get("authorization"),
                      json.loads(request.content) if request.content else dict(request.url.params)))
        if request.method == "GET":
            return httpx.Response(200, json={"assets": [{"id": 7, "uri": SUBMISSIONS_ASSET_URI}], "total_entries": 1})
        return httpx.Response(200, json={"id": 1})

    from datetime import datetime, timezone

    from intake.store import Submission

    settings = load_settings()
    submission = Submission(3, UNIT, PERIOD, "Bieu06_01267.xlsx", "ab" * 32, "link 1",
                            datetime(2025, 8, 12, 2, tzinfo=timezone.utc), 0, 0, None, "sửa số hộ tịch", 2)
    sent = Announcer("http://airflow:8080/", "jwt", transport=httpx.MockTransport(airflow)).announce(
        submission, "Phường Sông Hiến", settings.period(PERIOD))
    assert calls[0] == ("GET", "/api/v2/assets", "Bearer jwt", {"uri_pattern": SUBMISSIONS_ASSET_URI})
    assert calls[1][:3] == ("POST", "/api/v2/assets/events", "Bearer jwt")
    assert calls[1][3] == {"asset_id": 7, "extra": sent}
    assert sent["reason"] == correction_reason(submission, "Phường Sông Hiến") == \
        "late correction from Phường Sông Hiến (01267), received 2025-08-12: sửa số hộ tịch"
    assert reasons_by_period([sent, sent, {"period": "2025-Q1", "reason": None}]) == {
        "2025-Q1": "late correction from the intake", PERIOD: sent["reason"]}
    assert Announcer().announce(submission, "Phường Sông Hiến", settings.period(PERIOD)) is None  # not configured


def test_typed_values_fill_every_input_cell():
    assert set(TYPED) | {"received_total", "resolved_total", "pending_total"} == set(
        __import__("tthc.form", fromlist=["FIGURES"]).FIGURES)


def test_links_are_made_listed_and_revoked_from_the_command_line(tmp_path, monkeypatch, capsys):
    from intake.store import Store
    from runner.cli import main

    monkeypatch.setenv("TTHC_VAR_DIR", str(tmp_path / "var"))
    assert main(["intake", "token", "--period", PERIOD, "--unit", UNIT, "--unit", OTHER,
                 "--base-url", "https://bieu06.example.vn"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in printed] == [UNIT, OTHER]
    token = printed[0].split("\t")[-1].rsplit("/", 1)[1]
    assert printed[0].split("\t")[-1] == f"https://bieu06.example.vn/u/{token}"
    store = Store(tmp_path / "var" / "intake")
    assert store.link(token).unit_code == UNIT
    assert main(["intake", "token", "--province", "--base-url", "https://bieu06.example.vn"]) == 0
    assert "/tinh/" in capsys.readouterr().out
    assert main(["intake", "token", "--period", PERIOD, "--unit", "99999"]) == 2
    assert "no unit in force in 2025-Q2 with code 99999" in capsys.readouterr().err
    assert main(["intake", "revoke", "1"]) == 0 and main(["intake", "revoke", "1"]) == 2
    capsys.readouterr()
    assert main(["intake", "links", "--period", PERIOD]) == 0
    listed = capsys.readouterr().out
    assert "revoked" in listed and token not in listed


def test_an_unreadable_cell_is_a_critical_finding_on_that_cell(site, forms, tmp_path):
    book = openpyxl.load_workbook(forms[UNIT])
    book.active.cell(FIRST_FIELD_ROW + 1, column("received_online")).value = "mười hai"
    book.save(tmp_path / "words.xlsx")
    page = check(site, UNIT, tmp_path / "words.xlsx")
    assert page.status_code == 200
    assert re.search(r'<td id="o-CT-received_online" class="critical"', page.text)
    assert f"Dòng {FIRST_FIELD_ROW + 1}, ô D{FIRST_FIELD_ROW + 1}, Nhận trực tuyến (4)" in page.text
    assert "Ô có giá trị &#39;mười hai&#39;, không phải một số nguyên không âm" in page.text


def test_a_formula_reading_another_workbook_is_a_critical_finding(site, forms, tmp_path):
    book = openpyxl.load_workbook(forms[UNIT])
    book.active.cell(FIRST_FIELD_ROW, column("received_online")).value = "='[1]Sheet1'!C5"
    book.save(tmp_path / "linked.xlsx")
    page = check(site, UNIT, tmp_path / "linked.xlsx")
    assert page.status_code == 200
    assert re.search(r'<td id="o-HT-received_online" class="critical"', page.text)
    assert "reads another workbook (an external link)" in page.text


def test_a_csv_of_the_form_is_accepted_and_replaces_the_units_workbook(site, forms, tmp_path):
    """The form saved as CSV (UTF-8, as Excel's "CSV UTF-8" does), typed totals included."""
    import csv

    from python_calamine import CalamineWorkbook

    link, token = site["store"].issue("unit", THIRD, PERIOD)
    answer = site["client"].get(f"/u/{token}/bieu-mau.xlsx")
    (tmp_path / "blank.xlsx").write_bytes(answer.content)
    totals = fill(tmp_path / "blank.xlsx", tmp_path / "filled.xlsx")
    rows = [[int(v) if isinstance(v, float) else v for v in row]
            for row in CalamineWorkbook.from_path(str(tmp_path / "filled.xlsx")).get_sheet_by_index(0).to_python()]
    for row in rows[FIRST_FIELD_ROW - 1:FIRST_FIELD_ROW - 1 + 6]:  # no cached totals: typed as Excel would show them
        for total, parts in (("received_total", ("received_online", "received_direct_postal", "carried_over")),
                             ("resolved_total", ("resolved_early", "resolved_on_time", "resolved_late")),
                             ("pending_total", ("pending_within_due", "pending_overdue"))):
            row[column(total) - 1] = sum(int(row[column(p) - 1]) for p in parts)
    with open(tmp_path / "Bieu06.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (site["inbox"]).mkdir(parents=True, exist_ok=True)
    (site["inbox"] / "Bieu06_01273.xlsx").write_bytes(b"the sample's workbook, put there by hand")
    page = site["client"].post(f"/u/{token}/kiem-tra", files={"tep": ("Bieu06.csv", (tmp_path / "Bieu06.csv").read_bytes())})
    assert page.status_code == 200 and "Không có lỗi nghiêm trọng" in page.text, page.text[-3000:]
    done = site["client"].post(f"/u/{token}/nop", data={"check_id": check_id(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    assert "Bieu06_01273.csv" in inbox_files(site) and "Bieu06_01273.xlsx" not in inbox_files(site)
    rows, _, _ = validation_rows(site["inbox"] / "Bieu06_01273.csv", site["settings"], quarter=site["settings"].period)
    assert sum(r["received_online"] for r in rows if r["field_code"]) == totals["received_online"]
    kept = [p.name for p in (site["root"] / "var" / "intake" / "replaced" / PERIOD / THIRD).iterdir()]
    assert len(kept) == 1 and kept[0].endswith("_Bieu06_01273.xlsx")


@pytest.mark.parametrize("intake, expected", [
    ({"due_days": "five"}, "intake: due_days 'five' must be a whole number of days"),
    ({"uploads_per_minute": 0}, "uploads_per_minute 0 must be a whole number, 1 or more"),
    ({"deadline": 5}, "intake: unknown keys ['deadline']"),
    ({"source": "portal_dvc"}, "no spreadsheet source portal_dvc"),
])
def test_a_wrong_intake_setting_is_a_configuration_error(tmp_path, monkeypatch, intake, expected):
    import yaml

    from tthc.config import ConfigError

    doc = yaml.safe_load((Path(load_settings().province_file)).read_text(encoding="utf-8"))
    doc["intake"] = intake
    (tmp_path / "province.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("TTHC_PROVINCE_FILE", str(tmp_path / "province.yaml"))
    monkeypatch.setenv("TTHC_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(ConfigError, match=re.escape(expected)):
        create_app(load_settings())


def test_a_submission_that_fails_halfway_leaves_the_previous_one(tmp_path, monkeypatch):
    from intake import store as store_module
    from intake.store import Store

    store = Store(tmp_path / "intake")
    link, _ = store.issue("unit", UNIT, PERIOD)
    inbox = tmp_path / "spreadsheets" / PERIOD
    arguments = {"inbox": inbox, "name": "Bieu06_01267.xlsx", "link": link, "period": PERIOD, "criticals": 0,
                 "warnings": 0, "explanation": None, "others": [], "note_path": inbox / ".Bieu06_01267.xlsx.intake.json"}
    first = store.submit(data=b"first", correction_reason=None, **arguments)
    note = (inbox / ".Bieu06_01267.xlsx.intake.json").read_bytes()
    real_replace = store_module.os.replace

    def fail_on_the_workbook(source, target):
        if Path(target).name == "Bieu06_01267.xlsx":
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr(store_module.os, "replace", fail_on_the_workbook)
    with pytest.raises(OSError, match="disk full"):
        store.submit(data=b"second", correction_reason="sửa", **arguments)
    assert (inbox / "Bieu06_01267.xlsx").read_bytes() == b"first"
    assert [s.id for s in store.history(PERIOD, UNIT)] == [first.id] and store.current(PERIOD, UNIT)[0].replaces is None
    assert sorted(p.name for p in inbox.iterdir()) == [".Bieu06_01267.xlsx.intake.json", "Bieu06_01267.xlsx"]
    assert (inbox / ".Bieu06_01267.xlsx.intake.json").read_bytes() == note


def test_a_check_is_submitted_once(site, forms):
    page = check(site, OTHER, forms[OTHER])
    key = check_id(page.text)
    before = len(site["store"].history(PERIOD, OTHER))
    first = submit(site, OTHER, key, ly_do_sua="gửi lại") if before else submit(site, OTHER, key)
    assert first.status_code == 303
    assert submit(site, OTHER, key, ly_do_sua="gửi lại").status_code == 409
    assert len(site["store"].history(PERIOD, OTHER)) == before + 1
