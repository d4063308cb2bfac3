"""The analysts' quarterly report: one self-contained HTML file in Vietnamese.

Provincial offices often read it on machines without internet access, so it references nothing
outside itself: no scripts, no web fonts, charts drawn as inline SVG here in Python. Every rate
names its denominator, because reports disagree on denominators (domain.md §6).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from publishing.workbook import period_line
from tthc.form import COLUMN_NUMBER, FACT_FIGURES, FIGURE_HEADERS, LEVEL_CAPTIONS, SEVERITIES, SEVERITY_LABELS, \
    SEVERITY_RANK, missing
from tthc.model import COLUMN_LABELS

SEVERITY_COLOURS = {"critical": "#b3261e", "warning": "#c77700", "info": "#3b6ea8"}
LEVEL_COLOURS = {"department": "#1f5f8b", "district": "#6a8d2f", "commune": "#2a9d8f"}
NO_RESOLVED = "không có hồ sơ đã giải quyết"
ON_TIME_TITLE = "Tỷ lệ giải quyết trước và đúng hạn"
ON_TIME_DENOMINATOR = ("Tỷ lệ giải quyết đúng hạn = (số hồ sơ giải quyết trước hạn + đúng hạn) / tổng số hồ sơ "
                       "đã giải quyết trong kỳ, tức (cột 8 + cột 9) / cột 7 của Biểu 06. Mẫu số: số hồ sơ đã "
                       "giải quyết (không phải chỉ số 2.1 của Quyết định 766/QĐ-TTg, có mẫu số là mọi hồ sơ xử lý "
                       "trong kỳ).")
UNIT_COLUMNS = ("unit_code", "unit_name", "unit_level", "resolved_total", "resolved_early", "resolved_on_time",
                "resolved_late", "received_total", "pending_overdue", "quality_status")
TREND_COLUMNS = ("period_label", "received_total", "resolved_total", "resolved_in_time_share")
# shown in the quarters' table when the trend has them: what continues from one quarter to the next
TREND_CONTINUITY = ("carried_over", "pending_total")
CALLBACK_COLUMNS = ("unit_code", "unit_name", "check_id", "severity", "message", "columns")
MOVE_COLUMNS = ("against", "unit_code", "unit_name", "figure", "province_value", "against_value", "rule", "rule_label",
                "dossiers_in", "dossiers_out", "example_dossiers")
VENDOR_NAMES = {"tandan": "phần mềm Tân Dân", "opencps": "phần mềm OpenCPS", "province": "định nghĩa của tỉnh"}


@dataclass
class ReportData:
    """What one quarter's report shows; the frames come from the published vintage and the
    quality tables, so the report never computes figures the warehouse does not hold.

    headline: province totals of tthc.form.FIGURES (None where not reported).
    units: one row per published unit, columns UNIT_COLUMNS.
    trend: one row per quarter in the warehouse, oldest first, columns TREND_COLUMNS;
        resolved_in_time_share is a fraction (0–1) over resolved dossiers, None when none were resolved.
    findings_by_severity: severity (critical, warning, info) → number of findings.
    callback_list: whom to call about which figures, columns CALLBACK_COLUMNS; `columns` holds
        the figure names involved (a list, or one comma-separated string).
    definition_moves: why a vendor's own report would print other figures (quality.definition_moves),
        columns MOVE_COLUMNS.
    """

    province_name: str
    period_label: str
    period_start: date
    period_end: date
    vintage: int
    headline: dict[str, int | None]
    units: pd.DataFrame
    trend: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(TREND_COLUMNS)))
    findings_by_severity: dict[str, int] = field(default_factory=dict)
    callback_list: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(CALLBACK_COLUMNS)))
    definition_moves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(MOVE_COLUMNS)))


def _e(value) -> str:
    return html.escape("" if missing(value) else str(value), quote=True)


def vn_number(value) -> str:
    """140683 → "140.683": Vietnamese digit grouping."""
    if missing(value):
        return "—"
    return f"{int(value):,}".replace(",", ".")


def vn_percent(rate, digits: int = 1) -> str:
    """0.984 → "98,4%"."""
    if missing(rate):
        return "—"
    return f"{rate * 100:.{digits}f}".replace(".", ",") + "%"


def resolved_in_time_share(early, on_time, resolved_total) -> float | None:
    """(early + on time) / resolved; None when nothing was resolved or a figure is missing."""
    if any(missing(v) for v in (early, on_time, resolved_total)) or resolved_total == 0:
        return None
    return (early + on_time) / resolved_total


def _share(part, whole) -> float | None:
    if missing(part) or missing(whole) or whole == 0:
        return None
    return part / whole


# --- headline ---------------------------------------------------------------------------------

def _cards(data: ReportData) -> str:
    h = {k: (None if missing(v) else int(v)) for k, v in data.headline.items()}
    new = None if missing(h.get("received_online")) or missing(h.get("received_direct_postal")) \
        else h["received_online"] + h["received_direct_postal"]
    rate = resolved_in_time_share(h.get("resolved_early"), h.get("resolved_on_time"), h.get("resolved_total"))
    cards = [
        ("Hồ sơ nhận giải quyết", vn_number(h.get("received_total")),
         f"mới tiếp nhận {vn_number(new)}, từ kỳ trước {vn_number(h.get('carried_over'))}"),
        ("Tiếp nhận trực tuyến", vn_percent(_share(h.get("received_online"), new)),
         f"{vn_number(h.get('received_online'))} hồ sơ; mẫu số: hồ sơ mới tiếp nhận trong kỳ"),
        ("Đã giải quyết", vn_number(h.get("resolved_total")),
         f"trước hạn {vn_number(h.get('resolved_early'))}, đúng hạn {vn_number(h.get('resolved_on_time'))}"),
        (ON_TIME_TITLE, vn_percent(rate), "mẫu số: hồ sơ đã giải quyết"),
        ("Giải quyết quá hạn", vn_number(h.get("resolved_late")), "hồ sơ trả kết quả sau hạn"),
        ("Đang giải quyết", vn_number(h.get("pending_total")),
         f"trong đó quá hạn {vn_number(h.get('pending_overdue'))}"),
        ("Trả lại, rút, dừng xử lý", vn_number(h.get("returned_withdrawn")), "hồ sơ kết thúc không giải quyết"),
        ("Đang chờ bổ sung, tạm dừng", vn_number(h.get("pending_paused")),
         "trong số đang giải quyết" if h.get("pending_paused") is not None
         else "không đủ: có đơn vị chỉ gửi biểu tự báo cáo, không có dữ liệu hồ sơ"),
    ]
    items = "".join(f'<div class="card"><div class="card-label">{_e(label)}</div>'
                    f'<div class="card-value">{_e(value)}</div><div class="card-note">{_e(note)}</div></div>'
                    for label, value, note in cards)
    return f'<div class="cards">{items}</div>'


# --- charts -----------------------------------------------------------------------------------

def _svg(width: int, height: int, label: str, body: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{_e(label)}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet">'
            f'<title>{_e(label)}</title>{body}</svg>')


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unit_chart(units: pd.DataFrame, province_rate: float | None) -> str:
    """Units from the lowest on-time rate to the highest, so the ones to look at come first;
    units that resolved nothing are listed after them, without a bar."""
    frame = units.copy()
    frame["rate"] = [resolved_in_time_share(e, o, t) for e, o, t in
                     zip(frame["resolved_early"], frame["resolved_on_time"], frame["resolved_total"])]
    frame["no_rate"] = frame["rate"].isna()
    frame = frame.sort_values(["no_rate", "rate", "unit_name"], kind="stable", na_position="last")
    label_w, bar_w, value_w, row_h, top = 300, 400, 150, 20, 34
    width = label_w + bar_w + value_w
    height = top + row_h * len(frame) + 12
    levels = [level for level in LEVEL_COLOURS if (frame["unit_level"] == level).any()]
    legend = _legend([(LEVEL_CAPTIONS[level], LEVEL_COLOURS[level]) for level in levels], label_w, height + 14)
    height += 24
    x0 = label_w
    parts = [legend]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = x0 + bar_w * tick
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 32}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{top - 10}" text-anchor="middle">{vn_percent(tick, 0)}</text>')
    for i, row in enumerate(frame.itertuples(index=False)):
        y = top + i * row_h
        name = str(row.unit_name if not missing(row.unit_name) else row.unit_code)
        flag = " *" if str(row.quality_status) == "warning" else ""
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.68:.1f}" text-anchor="end">'
                     f'<title>{_e(name)} ({_e(row.unit_code)})</title>{_e(_short(name, 40) + flag)}</text>')
        if row.no_rate:
            parts.append(f'<text class="none" x="{x0 + 4}" y="{y + row_h * 0.68:.1f}">{_e(NO_RESOLVED)}</text>')
            continue
        colour = LEVEL_COLOURS.get(row.unit_level, "#555")
        done = int(row.resolved_early) + int(row.resolved_on_time)
        tip = (f"{name}: {vn_percent(row.rate)} ({vn_number(done)} / {vn_number(row.resolved_total)} "
               f"hồ sơ đã giải quyết; quá hạn {vn_number(row.resolved_late)})")
        parts.append(f'<rect x="{x0}" y="{y + 3}" width="{max(bar_w * row.rate, 1):.1f}" height="{row_h - 6}" '
                     f'fill="{colour}"><title>{_e(tip)}</title></rect>'
                     f'<text class="value" x="{x0 + bar_w + 6}" y="{y + row_h * 0.68:.1f}">'
                     f'{_e(vn_percent(row.rate))} · {_e(vn_number(row.resolved_total))} hồ sơ</text>')
    if province_rate is not None:
        x = x0 + bar_w * province_rate
        parts.append(f'<line class="reference" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 32}"/>'
                     f'<text class="reference-label" x="{x - 4:.1f}" y="{top - 22}" text-anchor="end">'
                     f'Toàn tỉnh {_e(vn_percent(province_rate))}</text>')
    label = f"{ON_TIME_TITLE} theo đơn vị, {len(frame)} đơn vị, từ thấp đến cao"
    return _svg(width, height, label, "".join(parts))


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below `value`: axis steps people read at a glance."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _legend(items: list[tuple[str, str]], x: int, y: int) -> str:
    out, offset = [], x
    for text, colour in items:
        out.append(f'<rect x="{offset}" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
                   f'<text class="legend" x="{offset + 16}" y="{y}">{_e(text)}</text>')
        offset += 24 + 8 * len(text)
    return "".join(out)


def _trend_volume_chart(trend: pd.DataFrame, current: str) -> str:
    """Received and resolved dossiers per quarter, side by side."""
    series = (("received_total", "Nhận giải quyết", "#1f5f8b"), ("resolved_total", "Đã giải quyết", "#2a9d8f"))
    values = [v for name, _, _ in series for v in trend[name] if not missing(v)]
    step = _nice_max(max(values, default=0) / 5)
    step = math.ceil(step) if step < 10 else step  # counts are whole numbers
    ticks = max(1, math.ceil(max(values, default=0) / step))
    top_value = step * ticks
    left, plot_w, plot_h, top = 80, max(120 * len(trend), 360), 220, 34
    width, height = left + plot_w + 20, top + plot_h + 50
    base = top + plot_h
    parts = [_legend([(label, colour) for _, label, colour in series], left, 16)]
    for k in range(ticks + 1):
        tick = step * k
        y = base - plot_h * k / ticks
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{vn_number(round(tick))}</text>')
    slot = plot_w / max(len(trend), 1)
    bar = min(36, slot / 3)
    for i, row in enumerate(trend.itertuples(index=False)):
        centre = left + slot * (i + 0.5)
        for j, (name, label, colour) in enumerate(series):
            value = getattr(row, name)
            if missing(value):
                continue
            h = plot_h * value / top_value
            x = centre - bar + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar - 2:.1f}" height="{max(h, 0.5):.1f}" '
                         f'fill="{colour}"><title>{_e(row.period_label)} – {_e(label)}: '
                         f'{_e(vn_number(value))}</title></rect>')
        css = "tick current" if row.period_label == current else "tick"
        parts.append(f'<text class="{css}" x="{centre:.1f}" y="{base + 18}" text-anchor="middle">'
                     f'{_e(row.period_label)}</text>')
    return _svg(width, height, f"Số hồ sơ nhận và đã giải quyết theo quý, {len(trend)} quý", "".join(parts))


def _trend_table(trend: pd.DataFrame) -> str:
    """The province's figures quarter by quarter, with carried over and pending when the trend has them:
    each quarter's carried over is the previous quarter's pending, across the reform of the units too."""
    if not set(TREND_CONTINUITY) <= set(trend.columns):
        return ""
    head = ("Quý", "Từ kỳ trước (6)", "Nhận giải quyết (3)", "Đã giải quyết (7)", "Đang giải quyết (11)")
    rows = "".join(
        f"<tr><td>{_e(row.period_label)}</td>"
        + "".join(f'<td class="num">{_e(vn_number(getattr(row, name)))}</td>'
                  for name in ("carried_over", "received_total", "resolved_total", "pending_total"))
        + "</tr>" for row in trend.itertuples(index=False))
    return ("<details><summary>Bảng số liệu toàn tỉnh theo quý</summary><table><thead><tr>"
            + "".join(f"<th>{_e(h)}</th>" for h in head) + f"</tr></thead><tbody>{rows}</tbody></table>"
            "<p>Số từ kỳ trước (6) của một quý bằng số đang giải quyết (11) của quý trước khi mọi đơn vị đều được "
            "công bố, kể cả qua sắp xếp đơn vị hành chính ngày 01/07/2025: hồ sơ các đơn vị cũ còn đang giải quyết "
            "được bàn giao và tính là từ kỳ trước ở đơn vị tiếp nhận, không tính là mới tiếp nhận.</p></details>")


def _trend_rate_chart(trend: pd.DataFrame, current: str) -> str:
    """On-time rate per quarter as a line; the axis starts below the lowest rate so that
    changes of a few points stay visible, and says where it starts."""
    rates = [r for r in trend["resolved_in_time_share"] if not missing(r)]
    low = max(0.0, math.floor((min(rates, default=0) - 0.05) * 10) / 10)
    left, plot_w, plot_h, top = 80, max(120 * len(trend), 360), 180, 20
    width, height = left + plot_w + 20, top + plot_h + 50
    base = top + plot_h
    grid, marks, points = [], [], []
    for k in range(5):
        tick = low + (1 - low) * k / 4
        y = base - plot_h * k / 4
        grid.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>'
                    f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{vn_percent(tick, 1)}</text>')
    slot = plot_w / max(len(trend), 1)
    for i, row in enumerate(trend.itertuples(index=False)):
        centre = left + slot * (i + 0.5)
        css = "tick current" if row.period_label == current else "tick"
        grid.append(f'<text class="{css}" x="{centre:.1f}" y="{base + 18}" text-anchor="middle">'
                    f'{_e(row.period_label)}</text>')
        if missing(row.resolved_in_time_share):
            marks.append(f'<text class="none" x="{centre:.1f}" y="{base - 6}" text-anchor="middle">—</text>')
            continue
        y = base - plot_h * (row.resolved_in_time_share - low) / (1 - low)
        points.append(f"{centre:.1f},{y:.1f}")
        marks.append(f'<circle cx="{centre:.1f}" cy="{y:.1f}" r="4" fill="#b35c00">'
                     f'<title>{_e(row.period_label)}: {_e(vn_percent(row.resolved_in_time_share))}</title></circle>'
                     f'<text class="value" x="{centre:.1f}" y="{y - 9:.1f}" text-anchor="middle">'
                     f'{_e(vn_percent(row.resolved_in_time_share))}</text>')
    line = (f'<polyline points="{" ".join(points)}" fill="none" stroke="#b35c00" stroke-width="2"/>'
            if len(points) > 1 else "")
    parts = grid + [line] + marks
    return _svg(width, height, f"{ON_TIME_TITLE} theo quý, trục dọc từ {vn_percent(low, 0)}", "".join(parts))


def _severity_chart(counts: dict[str, int]) -> str:
    order = [s for s in SEVERITIES if s in counts] + sorted(s for s in counts if s not in SEVERITIES)
    label_w, bar_w, row_h, top = 230, 360, 28, 8
    width, height = label_w + bar_w + 80, top + row_h * len(order) + 8
    most = max([int(counts[s]) for s in order], default=0) or 1
    parts = []
    for i, severity in enumerate(order):
        y, count = top + i * row_h, int(counts[severity])
        text = SEVERITY_LABELS.get(severity, severity)
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.65:.1f}" text-anchor="end">'
                     f'{_e(text)}</text>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{max(bar_w * count / most, 1):.1f}" height="{row_h - 8}" '
                     f'fill="{SEVERITY_COLOURS.get(severity, "#555")}"><title>{_e(text)}: {count}</title></rect>'
                     f'<text class="value" x="{label_w + bar_w * count / most + 6:.1f}" y="{y + row_h * 0.65:.1f}">'
                     f'{_e(vn_number(count))}</text>')
    return _svg(width, height, "Số phát hiện về chất lượng dữ liệu theo mức độ", "".join(parts))


# --- tables -----------------------------------------------------------------------------------

def _figure_names(columns) -> str:
    """Figure names as the form says them, with their column numbers, for the person who calls."""
    if isinstance(columns, str):
        names = [c.strip() for c in columns.split(",")]
    elif columns is None or not hasattr(columns, "__iter__"):
        return ""
    else:
        names = [str(c) for c in columns]
    out = []
    for name in filter(None, names):
        number = COLUMN_NUMBER.get(name)
        label = FIGURE_HEADERS.get(name) or COLUMN_LABELS.get(name, name)
        out.append(f"{label} (cột {number})" if number else label)
    return "; ".join(out)


def _unit_name(name) -> str:
    """A unit code that is in no list of the period (a vendor's own id, a mistyped code) has no name."""
    return "(không có trong danh mục)" if missing(name) else str(name)


def _callback_table(callback: pd.DataFrame) -> str:
    if callback.empty:
        return '<p class="empty">Không có đơn vị nào cần gọi lại để xác nhận số liệu.</p>'
    rank = SEVERITY_RANK
    frame = callback.assign(_rank=callback["severity"].map(lambda s: rank.get(s, len(rank))))
    frame = frame.sort_values(["_rank", "unit_code", "check_id"], kind="stable")
    rows = []
    for row in frame.itertuples(index=False):
        rows.append(
            f'<tr class="sev-{_e(row.severity)}"><td>{_e(_unit_name(row.unit_name))}'
            f'<div class="code">{_e(row.unit_code)}</div></td>'
            f'<td>{_e(SEVERITY_LABELS.get(row.severity, row.severity))}</td>'
            f'<td>{_e(_figure_names(row.columns))}</td><td>{_e(row.message)}</td>'
            f'<td class="code">{_e(row.check_id)}</td></tr>')
    return ('<table class="callback"><thead><tr><th>Đơn vị cần gọi lại</th><th>Mức độ</th>'
            '<th>Số liệu cần xác nhận</th><th>Nội dung</th><th>Mã kiểm tra</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _definitions_section(moves: pd.DataFrame) -> str:
    """Per vendor: each unit and figure its own report would print otherwise, and the rules that move
    the dossiers (docs/canonical-model.md, "Explaining a vendor's figures")."""
    if moves.empty:
        return ('<p class="empty">Không có đơn vị nào mà phần mềm một cửa tính Biểu 06 theo định nghĩa khác '
                'cho ra số liệu khác.</p>')
    parts = []
    form_order = {figure: i for i, figure in enumerate(FACT_FIGURES)}
    moves = moves.assign(_order=moves["figure"].map(form_order))
    moves = moves.sort_values(["against", "unit_code", "_order"], kind="stable")
    for against, of_vendor in moves.groupby("against", sort=True):
        rows = []
        for (unit, figure), group in of_vendor.groupby(["unit_code", "figure"], sort=False):
            first = group.iloc[0]
            if int(first.province_value) == int(first.against_value):
                continue
            rules = "; ".join(f"{_e(r.rule_label)}: {r.dossiers_in - r.dossiers_out:+d} hồ sơ "
                              f"(ví dụ {_e(r.example_dossiers)})" for r in group.itertuples())
            name = first.unit_name if isinstance(first.unit_name, str) else ""
            rows.append(f'<tr><td>{_e(name)}<div class="code">{_e(unit)}</div></td>'
                        f'<td>{_e(FIGURE_HEADERS[figure])}</td>'
                        f'<td class="num">{vn_number(first.province_value)}</td>'
                        f'<td class="num">{vn_number(first.against_value)}</td><td>{rules}</td></tr>')
        vendor = VENDOR_NAMES.get(against, against)
        parts.append(
            f"<details><summary>So với {_e(vendor)}: {len(rows)} số liệu khác nhau</summary>"
            '<table class="callback"><thead><tr><th>Đơn vị</th><th>Số liệu</th><th>Theo định nghĩa của tỉnh</th>'
            f"<th>Theo {_e(vendor)}</th><th>Quy tắc làm khác (số hồ sơ chuyển cột)</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></details>')
    return "".join(parts)


def _units_table(units: pd.DataFrame) -> str:
    rows = []
    others = sorted(set(units["unit_level"].dropna().astype(str)) - set(LEVEL_CAPTIONS))
    for level in [*LEVEL_CAPTIONS, *others]:
        part = units[units["unit_level"] == level].sort_values("unit_name", kind="stable")
        for row in part.itertuples(index=False):
            rate = resolved_in_time_share(row.resolved_early, row.resolved_on_time, row.resolved_total)
            rows.append(
                f"<tr><td>{_e(row.unit_name)}<div class=\"code\">{_e(row.unit_code)}</div></td>"
                f"<td>{_e(LEVEL_CAPTIONS.get(level, level))}</td><td class=\"num\">{vn_number(row.received_total)}</td>"
                f"<td class=\"num\">{vn_number(row.resolved_total)}</td>"
                f"<td class=\"num\">{vn_number(row.resolved_late)}</td>"
                f"<td class=\"num\">{_e(vn_percent(rate) if rate is not None else NO_RESOLVED)}</td>"
                f"<td class=\"num\">{vn_number(row.pending_overdue)}</td>"
                f"<td>{'cảnh báo' if str(row.quality_status) == 'warning' else 'đạt'}</td></tr>")
    return ('<table class="units"><thead><tr><th>Đơn vị</th><th>Cấp</th><th>Nhận giải quyết</th>'
            f'<th>Đã giải quyết</th><th>Quá hạn</th><th>{_e(ON_TIME_TITLE)}</th><th>Đang giải quyết quá hạn</th>'
            f'<th>Chất lượng số liệu</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


# --- page -------------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
body { font-family: "Noto Sans", "DejaVu Sans", "Segoe UI", Arial, sans-serif; margin: 0; color: #1d1d1f;
       background: #f6f7f9; line-height: 1.45; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 8px; border-bottom: 2px solid #d6dbe1; padding-bottom: 4px; }
.meta { color: #555; margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #d6dbe1; border-radius: 6px; padding: 12px 14px; }
.card-label { font-size: .9rem; color: #444; }
.card-value { font-size: 1.7rem; font-weight: 700; margin: 2px 0; }
.card-note { font-size: .8rem; color: #666; }
figure { background: #fff; border: 1px solid #d6dbe1; border-radius: 6px; margin: 12px 0; padding: 12px;
         overflow-x: auto; }
figcaption { font-size: .85rem; color: #444; margin-top: 6px; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg.chart text { fill: #222; }
svg.chart .tick { fill: #555; font-size: 11px; }
svg.chart .tick.current { font-weight: 700; fill: #000; }
svg.chart .none { fill: #777; font-style: italic; }
svg.chart .grid { stroke: #e3e6ea; stroke-width: 1; }
svg.chart .reference { stroke: #b3261e; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg.chart .reference-label { fill: #b3261e; font-size: 11px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .88rem; }
th, td { border: 1px solid #d6dbe1; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; white-space: nowrap; }
.code { color: #666; font-size: .78rem; font-family: "DejaVu Sans Mono", monospace; }
tr.sev-critical td:first-child { border-left: 4px solid #b3261e; }
tr.sev-warning td:first-child { border-left: 4px solid #c77700; }
.empty { color: #555; font-style: italic; }
details summary { cursor: pointer; margin: 8px 0; }
footer { color: #666; font-size: .8rem; padding: 24px 20px; }
@media print { body { background: #fff; } figure, .card { break-inside: avoid; } }
"""


def _check(data: ReportData) -> None:
    for name, frame, columns in (("units", data.units, UNIT_COLUMNS), ("trend", data.trend, TREND_COLUMNS),
                                 ("callback_list", data.callback_list, CALLBACK_COLUMNS)):
        missing = set(columns) - set(frame.columns)
        if missing:
            raise ValueError(f"ReportData.{name} lacks columns: {', '.join(sorted(missing))}")


def render_report(data: ReportData) -> str:
    """The report's HTML text."""
    _check(data)
    h = data.headline
    province_rate = resolved_in_time_share(h.get("resolved_early"), h.get("resolved_on_time"), h.get("resolved_total"))
    title = f"Báo cáo tình hình, kết quả giải quyết TTHC – {data.province_name} – {data.period_label}"
    units = data.units
    no_resolved = int(sum(resolved_in_time_share(e, o, t) is None for e, o, t in
                          zip(units["resolved_early"], units["resolved_on_time"], units["resolved_total"])))
    warned = int((units["quality_status"] == "warning").sum())

    if units.empty:
        unit_section = '<p class="empty">Kỳ này chưa có đơn vị nào được công bố số liệu.</p>'
    else:
        unit_section = (
            f"<figure>{_unit_chart(units, province_rate)}<figcaption>{_e(ON_TIME_DENOMINATOR)} "
            "Màu cột theo cấp đơn vị (chú thích dưới biểu đồ). Đường đứt nét: tỷ lệ toàn tỉnh. "
            f"Dấu * : đơn vị công bố kèm cảnh báo chất lượng số liệu ({warned} đơn vị). "
            f"{no_resolved} đơn vị {_e(NO_RESOLVED)} trong kỳ.</figcaption></figure>"
            f"<details><summary>Bảng số liệu theo đơn vị ({len(units)} đơn vị)</summary>{_units_table(units)}</details>")

    trend = data.trend
    if trend.empty:
        trend_section = '<p class="empty">Kho dữ liệu chưa có số liệu của các quý khác.</p>'
    else:
        trend_section = (
            f"<figure>{_trend_volume_chart(trend, data.period_label)}<figcaption>Số hồ sơ nhận giải quyết "
            "(cột 3) và đã giải quyết (cột 7) của toàn tỉnh, theo các quý có trong kho dữ liệu (bản công bố mới "
            "nhất của mỗi quý).</figcaption></figure>"
            f"<figure>{_trend_rate_chart(trend, data.period_label)}<figcaption>{_e(ON_TIME_DENOMINATOR)}"
            "</figcaption></figure>" + _trend_table(trend))

    findings = {k: int(v) for k, v in data.findings_by_severity.items() if not missing(v)}
    if sum(findings.values()) == 0:
        findings_section = '<p class="empty">Không có phát hiện nào về chất lượng dữ liệu trong kỳ.</p>'
    else:
        findings_section = (
            f"<figure>{_severity_chart(findings)}<figcaption>Nghiêm trọng: số liệu của đơn vị chưa được công bố "
            "cho đến khi được xác nhận lại. Cảnh báo: số liệu được công bố kèm ghi chú.</figcaption></figure>")

    body = f"""<header>
<h1>{_e(title)}</h1>
<p class="meta">{_e(period_line(data.period_start, data.period_end))} · Số liệu công bố lần {_e(data.vintage)}
· Đơn vị tính: số hồ sơ TTHC</p>
</header>
<main>
<section id="tong-quan"><h2>Số liệu chính toàn tỉnh</h2>{_cards(data)}</section>
<section id="theo-don-vi"><h2>{_e(ON_TIME_TITLE)} theo đơn vị</h2>{unit_section}</section>
<section id="xu-huong"><h2>Diễn biến qua các quý</h2>{trend_section}</section>
<section id="chat-luong"><h2>Chất lượng dữ liệu</h2>{findings_section}
<h3>Danh sách đơn vị cần gọi lại</h3>
<p>Đơn vị nào, về số liệu nào: cán bộ kiểm soát TTHC liên hệ để đơn vị xác nhận hoặc sửa số đã báo cáo.</p>
{_callback_table(data.callback_list)}</section>
<section id="dinh-nghia"><h2>Vì sao số liệu của phần mềm một cửa khác</h2>
<p>Cùng các hồ sơ, báo cáo Biểu 06 của phần mềm một cửa tính theo định nghĩa riêng của phần mềm. Bảng dưới cho biết,
với từng đơn vị và từng số liệu, quy tắc nào chuyển bao nhiêu hồ sơ sang cột khác; tổng các thay đổi đúng bằng
chênh lệch.</p>
{_definitions_section(data.definition_moves)}</section>
</main>
<footer>Biểu 06 ban hành kèm theo Thông tư số 01/2020/TT-VPCP. Báo cáo được tạo tự động từ số liệu đã kiểm tra
và công bố; tệp này không dùng tài nguyên bên ngoài.</footer>"""
    return f"""<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_report(path: Path, data: ReportData) -> Path:
    """Write the report to `path` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path
