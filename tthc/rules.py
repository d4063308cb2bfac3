"""Biểu 06 definitions as named rule sets (docs/canonical-model.md, "Rule sets").

The same dossiers give different Biểu 06s under different definitions: the province's, and
each one-stop-shop vendor's own report (../shared/vendors.md §3). A rule set names every choice
that moves a dossier between the form's columns, so that a province can say which definition
it publishes and see, dossier by dossier, why a vendor's figure differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from tthc.model import STATUS_STOPPED, STATUS_WAITING_DOCUMENTS, STATUS_WAITING_FEES

# rule → (allowed values, how the explanation names the rule)
RULES: dict[str, tuple[tuple[Any, ...], str]] = {
    "on_time": (("day", "timestamp", "half_day_session"),
                "So sánh đúng hạn (ngày / thời điểm / buổi làm việc)"),
    "no_due_date": (("early", "on_time", "late"), "Hồ sơ không có hạn trả"),
    "paused": (("within_due", "by_due", "not_pending"), "Hồ sơ tạm dừng (chờ bổ sung, nghĩa vụ tài chính, dừng)"),
    "paused_statuses": ((), "Trạng thái được coi là tạm dừng"),
    "paused_since": ((), "Tạm dừng tính từ ngày yêu cầu bổ sung"),
    "stopped": (("returned_withdrawn", "resolved", "paused"), "Hồ sơ dừng xử lý / không giải quyết (trạng thái 8)"),
    "withdrawn": (("returned_withdrawn", "resolved_on_time"), "Hồ sơ công dân xin rút (trạng thái 7)"),
    "finished_without_date": (("returned_at", "pending", "left_out"), "Hồ sơ đã xong nhưng không có ngày kết thúc"),
    "due_on_last_day": (("overdue", "within_due"), "Hồ sơ đang giải quyết đến hạn vào ngày cuối kỳ"),
    "carried_over_handed_back": ((True, False), "Hồ sơ xử lý xong kỳ trước, trả kết quả trong kỳ"),
    "bugs": ((), "Lỗi của phần mềm được sao chép"),
}

# vendors' known defects (../shared/vendors.md): listed, reproduced only when a rule set names them in `bugs`
KNOWN_BUGS: dict[str, str] = {
    "cancelled_stay_pending": "OpenCPS keeps a cancelled dossier without a releaseDate pending for ever.",
    "strict_bounds": "OpenCPS counts a dossier received or released at exactly 00:00:00 of the first day, or "
                     "released at 23:59:59 of the last, outside the period's receipts and resolutions.",
}
# listed only: they need what the canonical records do not keep
NOT_REPRODUCED: dict[str, str] = {
    "tandan_stopped_before_the_period": "Tân Dân counts a dossier stopped (status 8) as carried over and pending "
                                        "within due for ever, whatever its dates; one stopped before the period is "
                                        "in no landing window (received before the period's end, not finished "
                                        "before its start), so the tandan rule set does not count it.",
    "opencps_cancelled_before_the_period": "OpenCPS keeps a cancelled dossier pending for ever (bug "
                                           "cancelled_stay_pending); one cancelled before the period is in no "
                                           "landing window, so even with the bug asked for it is not counted.",
    "tandan_null_channel": "Tân Dân counts a dossier with KenhThucHien NULL in the total received but in neither "
                           "'online' nor 'direct and postal'; canonical records carry it as in person.",
    "tandan_uncatalogued": "Tân Dân's report leaves out dossiers whose procedure is missing from Catalog.ThuTucs "
                           "(INNER JOIN); canonical records cannot tell.",
    "opencps_twelve_hour_clock": "OpenCPS reads the index's GMT date strings back with 'dd/MM/yyyy hh:mm:ss': "
                                 "a GMT time from 12:00 to 12:59 becomes 00:xx (StatisticUtils.DATE_TIME_FORMAT); "
                                 "canonical records hold local times, not the index's strings.",
    "opencps_gmt_window": "OpenCPS fetches dossiers by comparing GMT date strings with local-day bounds: dossiers "
                          "received in the first 7 hours after the period are counted in it.",
    "opencps_no_domain": "OpenCPS skips dossiers whose service has no domainCode; canonical records keep them "
                         "with an unknown field.",
}


@dataclass(frozen=True)
class RuleSet:
    """Every choice that places a dossier in a column of the form. Defaults: the province's
    reading of Circular 01/2020/TT-VPCP, each reason in docs/canonical-model.md."""
    name: str = "province"
    on_time: str = "day"
    no_due_date: str = "on_time"
    paused: str = "within_due"
    paused_statuses: tuple[int, ...] = (STATUS_WAITING_DOCUMENTS, STATUS_WAITING_FEES, STATUS_STOPPED)
    # statuses whose pause starts at `paused_at` (a dossier paused after the period's end was being
    # processed at the end); the others count as paused whatever the date. The province's figure
    # uses no date: the national sync shape carries none, and a unit's figure must not depend on
    # which software it uses
    paused_since: tuple[int, ...] = ()
    stopped: str = "returned_withdrawn"
    withdrawn: str = "returned_withdrawn"
    finished_without_date: str = "returned_at"
    due_on_last_day: str = "overdue"
    carried_over_handed_back: bool = False
    bugs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name, (allowed, _) in RULES.items():
            value = getattr(self, name)
            if allowed and value not in allowed:
                raise ValueError(f"rule set {self.name!r}: {name} {value!r} is not one of {list(allowed)}")
        for name in ("paused_statuses", "paused_since"):
            if any(not isinstance(s, int) or not 1 <= s <= 10 for s in getattr(self, name)):
                raise ValueError(f"rule set {self.name!r}: {name} must be status codes 1–10")
        unknown = sorted(set(self.bugs) - set(KNOWN_BUGS))
        if unknown:
            raise ValueError(f"rule set {self.name!r}: bugs {unknown} are not among {sorted(KNOWN_BUGS)}")

    def parameters(self) -> dict[str, Any]:
        """The rule values as query parameters of the derivation (never formatted into SQL)."""
        values = {f"rule_{name}": getattr(self, name) for name in RULES if name not in ("paused_statuses", "paused_since",
                                                                                         "bugs")}
        values["rule_paused_statuses"] = list(self.paused_statuses)
        values["rule_paused_since"] = list(self.paused_since)
        for bug in KNOWN_BUGS:
            values[f"bug_{bug}"] = bug in self.bugs
        return values

    def differences(self, other: "RuleSet") -> list[str]:
        """The rules on which two rule sets differ, in RULES order."""
        return [name for name in RULES if getattr(self, name) != getattr(other, name)]

    def with_rule(self, name: str, value: Any) -> "RuleSet":
        return replace(self, **{name: value})


PROVINCE = RuleSet()
# Tân Dân's BaoCaoSo06aHandler (vendors.md §1): calendar days; no due date on time; status 5 paused from
# NgayYeuCauBoSung, 6 and 8 paused whatever the dates, all within due; withdrawn resolved on time;
# a finished status without KetThuc in no column; due on the last day within due.
TANDAN = RuleSet(name="tandan", on_time="day", no_due_date="on_time", paused="within_due",
                 paused_statuses=(STATUS_WAITING_DOCUMENTS, STATUS_WAITING_FEES, STATUS_STOPPED),
                 paused_since=(STATUS_WAITING_DOCUMENTS,), stopped="paused", withdrawn="resolved_on_time",
                 finished_without_date="left_out", due_on_last_day="within_due")
# OpenCPS's statistics engine (vendors.md §2): half-day sessions; no due date early; waiting outside
# pending, paying and the rest by due; unresolved resolved; cancelled outside resolved; no releaseDate
# pending; due on the last day overdue; released before the period and handed back in it carried over.
OPENCPS = RuleSet(name="opencps", on_time="half_day_session", no_due_date="early", paused="not_pending",
                  paused_statuses=(STATUS_WAITING_DOCUMENTS,), paused_since=(), stopped="resolved",
                  withdrawn="returned_withdrawn", finished_without_date="pending", due_on_last_day="overdue",
                  carried_over_handed_back=True)
BUILT_IN: dict[str, RuleSet] = {r.name: r for r in (PROVINCE, TANDAN, OPENCPS)}


def rule_set(spec: str | Mapping[str, Any] | None, where: str = "config/province.yaml definitions") -> RuleSet:
    """A rule set from configuration: a built-in name, or a mapping `{based_on: <name>, <rule>: value, …}`
    (`name` defaults to "province")."""
    if spec is None:
        return PROVINCE
    if isinstance(spec, str):
        if spec not in BUILT_IN:
            raise ValueError(f"{where}: rule set {spec!r} is not one of {sorted(BUILT_IN)}")
        return BUILT_IN[spec]
    values = dict(spec)
    base = BUILT_IN.get(values.pop("based_on", "province"))
    if base is None:
        raise ValueError(f"{where}: based_on {spec.get('based_on')!r} is not one of {sorted(BUILT_IN)}")
    unknown = sorted(set(values) - {f.name for f in fields(RuleSet)})
    if unknown:
        raise ValueError(f"{where}: unknown rules {unknown}; the rules are {sorted(RULES)}")
    for name in ("paused_statuses", "paused_since", "bugs"):
        if name in values:
            values[name] = tuple(values[name])
    try:
        return replace(base, **values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
