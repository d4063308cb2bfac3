"""The analysts' HTML report is self-contained, escapes what units typed, and renders in a real
browser (headless Chromium) with its charts and no console errors."""
from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from tests.support.chromium import Chromium, require_chromium
from publishing.report import NO_RESOLVED, ON_TIME_TITLE, ReportData, render_report, write_report
from tthc.form import FIGURES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unit(code, name, level, early, on_time, late, received, overdue, status="ok"):
    return {"unit_code": code, "unit_name": name, "unit_level": level, "resolved_total": early + on_time + late,
            "resolved_early": early, "resolved_on_time": on_time, "resolved_late": late,
            "received_total": received, "pending_overdue": overdue, "quality_status": status}


@pytest.fixture
def data() -> ReportData:
    units = pd.DataFrame([
        unit("000.00.15.H04", "Sở Tư pháp", "department", 900, 80, 20, 1100, 4),
        unit("000.00.18.H04", "Sở Tài nguyên và Môi trường", "department", 300, 100, 150, 700, 35, "warning"),
        unit("04045", "Xã Hưng Đạo", "commune", 400, 10, 0, 450, 0),
        unit("04060", "Xã <b>Quang Trung</b> & Lê Lợi", "commune", 0, 0, 0, 12, 0),
    ])
    headline = {f: int(units[f].sum()) if f in units else None for f in FIGURES}
    headline.update(received_online=1200, received_direct_postal=900, carried_over=162, pending_total=340,
                    pending_within_due=301, returned_withdrawn=12)
    trend = pd.DataFrame({"period_label": ["2024-Q4", "2025-Q1", "2025-Q2"],
                          "received_total": [2100, 1900, 2262], "resolved_total": [1800, 1750, 1960],
                          "resolved_in_time_share": [0.87, None, 0.9133]})
    callback = pd.DataFrame([
        {"unit_code": "04071", "unit_name": "Xã Đức Long", "check_id": "identity.received_total",
         "severity": "critical", "message": "Tổng số nhận (cột 3) khác tổng các cột 4, 5, 6: thiếu 1.000",
         "columns": ["received_total", "received_online"]},
        {"unit_code": "000.00.18.H04", "unit_name": "Sở Tài nguyên và Môi trường", "check_id": "balance",
         "severity": "warning", "message": "Nhận ≠ đã giải quyết + đang giải quyết + trả lại",
         "columns": "received_total, resolved_total, pending_total"},
        {"unit_code": "9cd88dc1-38ab", "unit_name": float("nan"), "check_id": "records.unit_unknown",
         "severity": "critical", "message": "4 hồ sơ ghi mã đơn vị 9cd88dc1-38ab", "columns": "unit_code"},
    ])
    return ReportData(province_name="Tỉnh Cao Bằng", period_label="2025-Q2", period_start=date(2025, 4, 1),
                      period_end=date(2025, 6, 30), vintage=2, headline=headline, units=units, trend=trend,
                      findings_by_severity={"critical": 3, "warning": 18, "info": 4}, callback_list=callback)


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


def test_report_is_self_contained_and_escapes_unit_text(tmp_path, data):
    path = write_report(tmp_path / "bao_cao.html", data)
    text = path.read_text(encoding="utf-8")
    assert text == render_report(data)
    assert '<meta charset="utf-8">' in text and '<html lang="vi">' in text
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:|//)""", text, re.IGNORECASE)
    assert "<script" not in text and "@import" not in text and "@font-face" not in text
    assert "Xã &lt;b&gt;Quang Trung&lt;/b&gt; &amp; Lê Lợi" in text and "<b>Quang" not in text
    assert "Mẫu số: số hồ sơ đã giải quyết" in text and NO_RESOLVED in text
    assert "Tổng số nhận giải quyết" not in text  # figure names come from the form's labels
    assert "Số hồ sơ nhận giải quyết – Tổng số (cột 3)" in text
    # on-time rate of a unit: (early + on time) / resolved
    assert "72,7%" in text  # Sở Tài nguyên và Môi trường: 400 / 550
    assert text.count('class="chart"') == 4
    # a vendor's own unit id, in no list of the period, is named as such, never "nan"
    assert "<td>(không có trong danh mục)<div class=\"code\">9cd88dc1-38ab</div>" in text
    assert "<td>Mã đơn vị</td>" in text and "<td>unit_code</td>" not in text  # a column named as officers know it
    assert not re.search(r">\s*(nan|NaN|None)\s*<", text)


def test_report_without_trend_findings_or_units_still_renders(tmp_path, data):
    data.trend = data.trend.iloc[0:0]
    data.findings_by_severity = {}
    data.callback_list = data.callback_list.iloc[0:0]
    data.units = data.units.iloc[0:0]
    text = write_report(tmp_path / "r.html", data).read_text(encoding="utf-8")
    assert 'class="chart"' not in text
    assert "Không có đơn vị nào cần gọi lại" in text


def test_report_renders_in_headless_chromium(tmp_path, data, chromium):
    path = write_report(tmp_path / "bao_cao.html", data)
    screenshot = tmp_path / "bao_cao.png"
    with Chromium(chromium) as browser:
        browser.send("Runtime.enable")
        browser.send("Log.enable")
        browser.open(path.as_uri(), timeout=30)
        page = browser.evaluate("""(() => {
            const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
                const box = svg.getBoundingClientRect();
                return {role: svg.getAttribute('role'), label: svg.getAttribute('aria-label'),
                        shapes: svg.querySelectorAll('rect, path, circle, polyline').length,
                        width: box.width, height: box.height};
            });
            return {title: document.title, charset: document.characterSet, charts,
                    text: document.body.innerText,
                    resources: performance.getEntriesByType('resource').map(r => r.name)};
        })()""")
        browser.screenshot(screenshot)
        errors = browser.console_errors()

        # the error collection itself works: a page that logs an error is caught
        browser.open("data:text/html;charset=utf-8,<script>console.error('probe error')</script>", timeout=30)
        assert any("probe error" in e for e in browser.console_errors()[len(errors):])

    assert errors == []
    assert page["title"] == "Báo cáo tình hình, kết quả giải quyết TTHC – Tỉnh Cao Bằng – 2025-Q2"
    assert page["charset"] == "UTF-8"
    assert page["resources"] == []
    assert len(page["charts"]) >= 2
    for chart in page["charts"]:
        assert chart["role"] == "img" and chart["label"]
        assert chart["shapes"] > 0 and chart["width"] > 0 and chart["height"] > 0, chart
    assert ON_TIME_TITLE in page["text"] and "Tỷ lệ giải quyết trước và đúng hạn theo đơn vị" in page["text"]
    assert "Xã <b>Quang Trung</b> & Lê Lợi" in page["text"]
    assert "Danh sách đơn vị cần gọi lại" in page["text"] and "Xã Đức Long" in page["text"]
    image = screenshot.read_bytes()
    assert image.startswith(PNG_SIGNATURE) and len(image) > 10_000


def test_report_explains_a_vendors_other_figures_by_rule(data):
    moves = pd.DataFrame([
        {"against": "tandan", "unit_code": "000.00.15.H04", "unit_name": "Sở Tư pháp", "figure": "pending_overdue",
         "province_value": 266, "against_value": 27, "rule": "paused_since",
         "rule_label": "Tạm dừng tính từ ngày yêu cầu bổ sung", "dossiers_in": 10, "dossiers_out": 0,
         "example_dossiers": "H04.1, H04.2"},
        {"against": "tandan", "unit_code": "000.00.15.H04", "unit_name": "Sở Tư pháp", "figure": "pending_overdue",
         "province_value": 266, "against_value": 27, "rule": "due_on_last_day",
         "rule_label": "Hồ sơ đang giải quyết đến hạn vào ngày cuối kỳ", "dossiers_in": 0, "dossiers_out": 249,
         "example_dossiers": "H04.3"},
    ])
    data.definition_moves = moves
    html = render_report(data)
    section = html[html.index('id="dinh-nghia"'):]
    assert "So với phần mềm Tân Dân: 1 số liệu khác nhau" in section
    assert "Đang giải quyết – Quá hạn" in section and ">266<" in section and ">27<" in section
    assert "Hồ sơ đang giải quyết đến hạn vào ngày cuối kỳ: -249 hồ sơ (ví dụ H04.3)" in section
    data.definition_moves = moves.iloc[0:0]
    assert "không có đơn vị nào" in render_report(data).lower()


def test_the_quarters_table_carries_pending_over_the_reform(data):
    data.trend = pd.DataFrame({"period_label": ["2025-Q2", "2025-Q3"], "received_total": [2262, 2400],
                               "carried_over": [300, 340], "resolved_total": [1960, 2100], "pending_total": [340, 290],
                               "resolved_in_time_share": [0.91, 0.9]})
    text = render_report(data)
    assert "Bảng số liệu toàn tỉnh theo quý" in text and "Đang giải quyết (11)" in text
    assert "<td>2025-Q3</td><td class=\"num\">340</td>" in text
    assert "tính là từ kỳ trước ở đơn vị tiếp nhận" in text
