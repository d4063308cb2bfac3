"""The intake in a real headless Chromium, served by uvicorn on 127.0.0.1 over a copy of the 2 %
sample's commune workbooks: an officer downloads the form, uploads it with a typing error and
sees the finding on the cell with its correction, fixes it and submits; a second unit's link
cannot read or replace it; the province's board lists it. Then `pipeline.run` of the quarter
(what `tthc run` calls) lands and publishes the submitted figures. Screenshots of every page at
desktop and phone widths go to var/screenshots/intake/ (TTHC_SCREENSHOTS_DIR overrides)."""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import uvicorn

from extractors.spreadsheet import unit_in_file_name
from intake.app import create_app
from runner.airflow_local import free_port
from runner.local_sources import environment as env
from tests.conftest import REPO
from tests.support.chromium import Chromium, require_chromium
from tests.support.intake_forms import TYPED, fill
from tests.test_faults import duckdb_url, new_var
from tthc.config import load_settings

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("intake_browser")]

PERIOD = "2024-Q2"
WIDTHS = {"desktop": (1280, 900, False, 1), "phone": (390, 844, True, 2)}
SCREENS = Path(os.environ.get("TTHC_SCREENSHOTS_DIR") or REPO / "var" / "screenshots" / "intake")


@pytest.fixture(scope="module")
def site(small_sample, tmp_path_factory):
    """The intake served on a free port, with links for two communes of the sample and the board."""
    root = tmp_path_factory.mktemp("intake-browser")
    var = new_var(root, small_sample)
    sheets = root / "spreadsheets"
    shutil.copytree(small_sample / "spreadsheets" / PERIOD, sheets / PERIOD)
    communes = sorted(unit_in_file_name(p.name) for p in (sheets / PERIOD).glob("Bieu06_*.xlsx"))
    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None, TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(sheets)):
        app = create_app(load_settings())
        store = app.state.intake.store
        unit, other = communes[0], communes[1]
        tokens = {unit: store.issue("unit", unit, PERIOD)[1], other: store.issue("unit", other, PERIOD)[1],
                  "province": store.issue("province", "04", None)[1]}
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "unit": unit, "other": other, "var": var,
                   "sheets": sheets, "root": root, "sample": small_sample}
        finally:
            server.should_exit = True
            thread.join(15)


@pytest.fixture(scope="module")
def browser():
    with Chromium(require_chromium()) as chromium:
        yield chromium


OVERFLOW: dict[str, int] = {}  # page → how much wider than a phone's screen it is laid out


def shots(browser: Chromium, name: str) -> None:
    """The page as it is now, at each width."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for width_name, (width, height, mobile, scale) in WIDTHS.items():
        browser.viewport(width, height, mobile=mobile, scale=scale)
        browser.screenshot(SCREENS / f"{name}-{width_name}.png")
        if mobile:
            OVERFLOW[name] = browser.evaluate("document.documentElement.scrollWidth") - width
    browser.viewport(*WIDTHS["desktop"][:2])


def text(browser: Chromium, selector: str) -> str:
    return browser.evaluate(f"(document.querySelector({selector!r}) || {{innerText: ''}}).innerText")


@pytest.fixture(scope="module")
def submitted(site, browser):
    """The whole officer's flow; what the later tests look at."""
    url, unit, other, tokens = site["url"], site["unit"], site["other"], site["tokens"]
    browser.send("Runtime.enable")
    browser.send("Log.enable")
    browser.open(f"{url}/u/{tokens[unit]}")
    shots(browser, "1-don-vi")
    browser.press("Tab", "Tab", 9)
    seen = {"first_tab": browser.evaluate("document.activeElement.className")}

    form = browser.download("#tai-bieu-mau", site["root"] / "downloads")
    seen["form_name"] = form.name
    typo, good = site["root"] / "typo.xlsx", site["root"] / "good.xlsx"
    fill(form, typo, typo=("received_total", 3))
    seen["totals"] = fill(form, good)

    browser.set_files("#tep", typo)
    browser.click_and_wait("#kiem-tra")
    seen["typo_cell"] = browser.evaluate(
        "(() => { const c = document.getElementById('o-HT-received_total'); return [c.className, c.innerText]; })()")
    seen["typo_result"] = text(browser, "#ket-qua")
    shots(browser, "2-kiem-tra-co-loi")

    browser.open(f"{url}/u/{tokens[unit]}")
    browser.set_files("#tep", good)
    browser.click_and_wait("#kiem-tra")
    seen["good_result"] = text(browser, "#ket-qua")
    shots(browser, "3-kiem-tra-dat")
    browser.click_and_wait("#nop")
    seen["done"] = text(browser, "#da-nop")
    shots(browser, "4-da-nop")

    browser.open(f"{url}/u/{tokens[other]}")
    seen["other_page"] = browser.evaluate("document.body.innerText")
    browser.set_files("#tep", good)
    browser.click_and_wait("#kiem-tra")
    seen["other_refusal"] = text(browser, "#tu-choi")
    shots(browser, "5-tu-choi-bieu-don-vi-khac")

    browser.open(f"{url}/tinh/{tokens['province']}?ky={PERIOD}")
    seen["board_row"] = browser.evaluate(f"document.getElementById('don-vi-{unit}').className")
    seen["board_missing"] = browser.evaluate("document.querySelectorAll('tr.missing').length")
    shots(browser, "6-bang-theo-doi-cua-tinh")
    seen["console"] = browser.console_errors()
    seen["good"] = good
    return seen


def test_an_officer_downloads_checks_fixes_and_submits(site, submitted):
    assert submitted["first_tab"] == "skip"  # the keyboard's first stop skips to the content
    assert submitted["form_name"] == f"Bieu06_{site['unit']}_{PERIOD}.xlsx"
    css, shown = submitted["typo_cell"]
    assert css == "critical" and shown.split() == ["3", "→", "30"]
    assert "lỗi nghiêm trọng" in submitted["typo_result"]
    assert "Không có lỗi nghiêm trọng" in submitted["good_result"]
    assert "Đã nộp" in submitted["done"]
    landed = site["sheets"] / PERIOD / f"Bieu06_{site['unit']}.xlsx"
    assert hashlib.sha256(landed.read_bytes()).digest() == hashlib.sha256(submitted["good"].read_bytes()).digest()
    # the refused upload's page answers 422, which the browser logs; nothing else may be
    assert [e for e in submitted["console"] if "status of 422" not in e] == []
    assert OVERFLOW == dict.fromkeys(OVERFLOW, 0) and len(OVERFLOW) == 6  # no page scrolls sideways on a phone
    for name in ("1-don-vi", "2-kiem-tra-co-loi", "3-kiem-tra-dat", "4-da-nop", "5-tu-choi-bieu-don-vi-khac",
                 "6-bang-theo-doi-cua-tinh"):
        for width in WIDTHS:
            assert (SCREENS / f"{name}-{width}.png").stat().st_size > 5000


def test_a_second_units_link_cannot_read_or_replace_the_submission(site, submitted):
    assert site["unit"] not in submitted["other_page"] and "Biểu đã nộp" not in submitted["other_page"]
    assert f"không phải của đơn vị bạn (mã {site['other']})" in submitted["other_refusal"]
    landed = site["sheets"] / PERIOD / f"Bieu06_{site['unit']}.xlsx"
    assert landed.read_bytes() == submitted["good"].read_bytes()
    assert submitted["board_row"] == "late"  # the sample's quarter was due long ago
    # the other communes' workbooks are the sample's files, not submissions: the board lists them as not sent
    assert submitted["board_missing"] > 100


def test_the_next_run_of_the_quarter_uses_the_submitted_workbook(site, submitted):
    from runner import pipeline
    from runner.local_sources import sample_connections

    var, unit = site["var"], site["unit"]
    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(site["sample"]), \
            env(TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(site["sheets"])):
        summary = pipeline.run(pipeline.make_context(PERIOD, run_id="after-intake", warehouse_url=duckdb_url(var),
                                                     note=f"workbook of {unit} submitted through the intake"))
    assert summary["published"]["vintage"] == 1
    landed = pq.read_table(var / "landing" / PERIOD / "commune_spreadsheets" / "figures.parquet").to_pylist()
    mine = [r for r in landed if r["unit_code"] == unit]
    assert {r["file"] for r in mine} == {f"Bieu06_{unit}.xlsx"}
    total = next(r for r in mine if r["is_total"])
    totals = submitted["totals"]
    assert {name: total[name] for name in TYPED} == totals
    received = totals["received_online"] + totals["received_direct_postal"] + totals["carried_over"]
    assert total["received_total"] == received
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        published = con.execute("SELECT source_id, received_total, received_online, resolved_late FROM "
                                "publish.bieu06_by_unit WHERE unit_code = ? AND period_start = DATE '2024-04-01'",
                                [unit]).fetchall()
    assert published == [("commune_spreadsheets", received, totals["received_online"], totals["resolved_late"])]
