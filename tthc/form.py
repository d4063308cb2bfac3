"""The Biểu 06 form's own vocabulary (Circular 01/2020/TT-VPCP, domain.md §3), said once:
its figures and column numbers, their labels, the identities between them, the reporting
levels, and the words for severities and publication that every stage and output shares."""
from __future__ import annotations

from datetime import date

# Biểu 06 figures in the form's column order (col 3 … 13), then (14) returned/withdrawn.
FIGURES = (
    "received_total",
    "received_online",
    "received_direct_postal",
    "carried_over",
    "resolved_total",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "pending_total",
    "pending_within_due",
    "pending_overdue",
    "returned_withdrawn",
)
RETURNED_WITHDRAWN_COLUMN = 14
# figure → the form's column number, (3) … (14)
COLUMN_NUMBER = {name: number for number, name in enumerate(FIGURES, start=3)}
FIGURE_BY_COLUMN_NUMBER = {number: name for name, number in COLUMN_NUMBER.items()}
# the numbered columns of the form proper; (14) is the returned/withdrawn column reports add
FORM_COLUMN_NUMBER = {name: number for name, number in COLUMN_NUMBER.items() if number < RETURNED_WITHDRAWN_COLUMN}
assert COLUMN_NUMBER["returned_withdrawn"] == RETURNED_WITHDRAWN_COLUMN
# Figures real reports print beside the form, counted from dossier records only (null where a unit
# reports by workbook or a source gives no records): pending dossiers awaiting the citizen's
# supplements, fees or a decision ("chờ bổ sung"). No identity of the form involves them.
BESIDE_FORM_FIGURES = ("pending_paused",)
# every figure a Biểu 06 fact row carries through the warehouse to the published tables
FACT_FIGURES = (*FIGURES, *BESIDE_FORM_FIGURES)


def missing(value) -> bool:
    """A figure not given: None, NaN, NaT or pandas' NA."""
    try:
        return value is None or not bool(value == value)  # NaN and NaT are not equal to themselves
    except TypeError:  # pandas' NA has no truth value
        return True


def add_up(figure: str, values) -> int | None:
    """A level's or the province's figure from its members' (None, NaN and pd.NA are "not given"): a
    figure of the form adds up what is given, None when nothing is; a figure beside the form, which
    only units with dossier records give, only when every member gives it, since a partial sum would
    read as the whole."""
    values = list(values)
    given = [v for v in values if not missing(v)]
    if not given or (figure in BESIDE_FORM_FIGURES and len(given) < len(values)):
        return None
    return int(sum(given))


# the column the published workbook and files give each figure beside the form
BESIDE_FORM_COLUMN_NUMBER = {name: number for number, name in enumerate(BESIDE_FORM_FIGURES,
                                                                         start=RETURNED_WITHDRAWN_COLUMN + 1)}

# total = sum of parts; the balance identity is apart because returned_withdrawn is often missing.
SUM_IDENTITIES = {
    "received_total": ("received_online", "received_direct_postal", "carried_over"),
    "resolved_total": ("resolved_early", "resolved_on_time", "resolved_late"),
    "pending_total": ("pending_within_due", "pending_overdue"),
}
BALANCE_IDENTITY = ("received_total", ("resolved_total", "pending_total", "returned_withdrawn"))

# How messages name a figure: "Tổng số đã giải quyết (7)".
FIGURE_LABELS = {
    "received_total": "Tổng số nhận giải quyết (3)", "received_online": "Nhận trực tuyến (4)",
    "received_direct_postal": "Nhận trực tiếp, bưu chính (5)", "carried_over": "Từ kỳ trước (6)",
    "resolved_total": "Tổng số đã giải quyết (7)", "resolved_early": "Giải quyết trước hạn (8)",
    "resolved_on_time": "Giải quyết đúng hạn (9)", "resolved_late": "Giải quyết quá hạn (10)",
    "pending_total": "Tổng số đang giải quyết (11)", "pending_within_due": "Đang giải quyết trong hạn (12)",
    "pending_overdue": "Đang giải quyết quá hạn (13)", "returned_withdrawn": "Trả lại, rút, dừng xử lý (14)",
    "pending_paused": "Đang chờ bổ sung, tạm dừng (15)",
}
# Figures real reports print in other shapes than the form's columns (issue 17), optional in the
# canonical CSV and the workbook reader with the figures beside the form; validated by `tthc
# validate`, never landed or published. Older two-way reports print "đúng hạn" including early:
# that figure is resolved_early_on_time.
EXTRA_FIGURES = (
    "received_new",  # tiếp nhận mới trong kỳ: (4) + (5)
    "received_direct",  # nhận trực tiếp, apart from postal
    "received_postal",  # nhận qua dịch vụ bưu chính
    "resolved_early_on_time",  # "đúng và trước hạn", "trả sớm và đúng hạn": (8) + (9)
    "refused",  # từ chối giải quyết
)
# every figure a report may give: the form's, those beside it, and the shapes above
REPORTED_FIGURES = (*FACT_FIGURES, *EXTRA_FIGURES)
# the figures a report may give or leave out without the form missing anything
OPTIONAL_FIGURES = (*BESIDE_FORM_FIGURES, *EXTRA_FIGURES)
# the identities the optional figures add, by key: (total, parts); with a part missing they bound
# the total from below, as the form's own
EXTRA_SUM_IDENTITIES = {
    "early_on_time": ("resolved_early_on_time", ("resolved_early", "resolved_on_time")),
    "resolved_merged": ("resolved_total", ("resolved_early_on_time", "resolved_late")),
    "received_new": ("received_total", ("received_new", "carried_over")),
    "new_channels": ("received_new", ("received_online", "received_direct_postal")),
    "direct_postal": ("received_direct_postal", ("received_direct", "received_postal")),
}
EXTRA_FIGURE_LABELS = {
    "received_new": "Tiếp nhận mới trong kỳ ((4) + (5))", "received_direct": "Nhận trực tiếp",
    "received_postal": "Nhận qua bưu chính", "resolved_early_on_time": "Giải quyết đúng và trước hạn ((8) + (9))",
    "refused": "Từ chối giải quyết",
}
assert set(EXTRA_FIGURE_LABELS) == set(EXTRA_FIGURES)

# How the form's header and the report's tables name a figure, without its number.
FIGURE_HEADERS = {
    "received_total": "Số hồ sơ nhận giải quyết – Tổng số",
    "received_online": "Trong kỳ – Trực tuyến",
    "received_direct_postal": "Trong kỳ – Trực tiếp, dịch vụ bưu chính",
    "carried_over": "Từ kỳ trước",
    "resolved_total": "Số hồ sơ đã giải quyết – Tổng số",
    "resolved_early": "Đã giải quyết – Trước hạn",
    "resolved_on_time": "Đã giải quyết – Đúng hạn",
    "resolved_late": "Đã giải quyết – Quá hạn",
    "pending_total": "Số hồ sơ đang giải quyết – Tổng số",
    "pending_within_due": "Đang giải quyết – Trong hạn",
    "pending_overdue": "Đang giải quyết – Quá hạn",
    "returned_withdrawn": "Trả lại, rút, dừng xử lý",
    "pending_paused": "Đang chờ bổ sung, tạm dừng",
}
assert set(FIGURE_LABELS) == set(FACT_FIGURES) == set(FIGURE_HEADERS)
assert all(f"({({**COLUMN_NUMBER, **BESIDE_FORM_COLUMN_NUMBER})[f]})" in FIGURE_LABELS[f] for f in FACT_FIGURES)
REPORTED_LABELS = {**FIGURE_LABELS, **EXTRA_FIGURE_LABELS}

# Levels: the units that report a Biểu 06 of their own, and the province they roll up to.
REPORTING_LEVELS = ("department", "district", "commune")
UNIT_LEVELS = ("province", *REPORTING_LEVELS)
# a level as a list of findings names it
LEVEL_LABELS = {"department": "Sở, ban, ngành", "district": "Cấp huyện", "commune": "Cấp xã",
                "province": "Cấp tỉnh"}
# a level as the form's rows caption it; districts appear only before the 2025 reform
LEVEL_CAPTIONS = {"department": "Cấp tỉnh (sở, ban, ngành)", "district": "Cấp huyện", "commune": "Cấp xã"}

# Severities of findings, most serious first: critical withholds a unit, warning publishes it flagged.
SEVERITIES = ("critical", "warning", "info")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
SEVERITY_LABELS = {"critical": "Nghiêm trọng (chưa công bố)", "warning": "Cảnh báo (công bố kèm ghi chú)",
                   "info": "Thông tin"}
# The Decision 766/QĐ-TTg indicators (transforms/indicators.py), named so that no two rates share
# a name: the report's "resolved in time" share of resolved dossiers is another rate.
INDICATOR_NAMES = {
    "on_time_rate": "Tỷ lệ hồ sơ đúng hạn, đã và đang giải quyết (766: 2.1)",
    "online_share": "Tỷ lệ hồ sơ tiếp nhận trực tuyến (766: 3.3)",
    "online_payment_share": "Tỷ lệ hồ sơ thanh toán trực tuyến (766: 3.5–3.6)",
    "digitisation_share": "Tỷ lệ hồ sơ có kết quả được số hóa (766: 4.x)",
}

# quality statuses of a unit-period whose figures are published; critical and missing are not
PUBLISHED_STATUSES = ("ok", "warning")


def quarter_label(day: date) -> str:
    """The calendar quarter a date falls in, as "2025-Q2" (a period is named by its end)."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
