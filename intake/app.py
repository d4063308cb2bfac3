"""The units' Biểu 06 intake: get the form, check a filled one, submit it; the province's board.

Server-rendered pages (Starlette + Jinja2, both already installed through Airflow; no
JavaScript: every page works with a keyboard, on a phone, and without a script blocker
getting in the way). Every unit page is reached by the unit's own link (a secret token per
unit and period); the board by the province's. Nothing an officer uploads is kept until they
submit: a checked upload waits in memory, for its link only, for `PENDING_MINUTES`.
"""
from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from extractors.spreadsheet import Limits, share, submission_note_path, unit_in_file_name, workbook_name
from intake.checking import SEVERITY_VI, CheckResult, Refused, check_upload, too_big
from intake.events import Announcer
from intake.store import Link, Store, Submission, UnknownLink
from publishing.workbook import write_unit_form
from tthc.config import ConfigError, Settings, var_dir
from tthc.form import COLUMN_NUMBER, FIGURE_HEADERS, FIGURES, LEVEL_LABELS
from tthc.periods import Period
from tthc.units import units_for_province, units_in_force

log = logging.getLogger("tthc.intake")
HERE = Path(__file__).parent
PENDING_MINUTES = 30
MAX_PENDING = 200
MAX_TEXT = 2000
SOURCE_KIND = "spreadsheet"


@dataclass
class IntakeOptions:
    """`intake:` of config/province.yaml (docs in README, "Commune intake")."""

    due_days: int = 5
    uploads_per_minute: int = 10
    source: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeOptions:
        doc = settings.province_doc.get("intake") or {}
        where = f"{settings.province_file}: intake"
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: expected a mapping (due_days, uploads_per_minute, source), got {doc!r}")
        unknown = sorted(set(map(str, doc)) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(cls.__dataclass_fields__)})")
        options = cls(source=doc.get("source"))
        for key in ("due_days", "uploads_per_minute"):
            value = doc.get(key, getattr(options, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "due_days" else 1):
                raise ConfigError(f"{where}: {key} {value!r} must be a whole number"
                                  f"{' of days, 0 or more' if key == 'due_days' else ', 1 or more'}")
            setattr(options, key, value)
        return options


@dataclass
class Pending:
    link_id: int
    filename: str
    data: bytes
    result: CheckResult
    expires: float


@dataclass
class Intake:
    settings: Settings
    store: Store
    options: IntakeOptions
    announcer: Announcer
    pending: OrderedDict = field(default_factory=OrderedDict)
    uploads: dict[int, deque] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.units = units_for_province(self.settings)
        sources = [s for s in self.settings.sources if s.kind == SOURCE_KIND]
        wanted = [s for s in sources if s.id == self.options.source] if self.options.source else sources
        if not wanted:
            raise ConfigError(f"{self.settings.sources_file}: no spreadsheet source {self.options.source or ''} "
                              "(intake: source in the province file): the intake lands workbooks in one")
        self.source = wanted[0]
        self.limits = Limits.from_spec(self.source.spec)
        self.fields = self.settings.fields

    # ------------------------------------------------------------ what a link names

    def period(self, label: str) -> Period:
        return self.settings.period(label)

    def unit(self, code: str, period: Period) -> dict:
        found = units_in_force(self.units, period.end)
        row = found[found["unit_code"] == code]
        if row.empty:
            raise UnknownLink(f"unit {code} is not in force in {period.label}")
        return row.iloc[0].to_dict()

    def due(self, period: Period) -> date:
        return period.end + timedelta(days=self.options.due_days)

    def inbox(self, period: Period) -> Path:
        return share(self.source) / period.label

    def fields_of(self, level: str) -> list[dict]:
        return [f for f in self.fields if level in f.get("levels", [level])]

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.settings.timezone)).date()

    # ------------------------------------------------------------ uploads

    def allow_upload(self, link: Link) -> bool:
        """At most `uploads_per_minute` checks per link in any minute."""
        window = self.uploads.setdefault(link.id, deque())
        moment = time.monotonic()
        while window and window[0] < moment - 60:
            window.popleft()
        if len(window) >= self.options.uploads_per_minute:
            return False
        window.append(moment)
        return True

    def keep_pending(self, link: Link, filename: str, data: bytes, result: CheckResult) -> str:
        moment = time.monotonic()
        for key in [k for k, p in self.pending.items() if p.expires < moment]:
            del self.pending[key]
        while len(self.pending) >= MAX_PENDING:
            self.pending.popitem(last=False)
        key = secrets.token_urlsafe(16)
        self.pending[key] = Pending(link.id, filename, data, result, moment + PENDING_MINUTES * 60)
        return key

    def take_pending(self, link: Link, key: str) -> Pending | None:
        found = self.pending.get(key or "")
        if found is None or found.link_id != link.id or found.expires < time.monotonic():
            return None
        return found

    def submit(self, link: Link, period: Period, unit: dict, pending: Pending, explanation: str | None,
               reason: str | None) -> Submission:
        suffix = Path(pending.filename).suffix.lower()
        inbox = self.inbox(period)
        name = workbook_name(link.unit_code, suffix)
        others = [p for p in inbox.glob("*") if p.is_file() and p.name != name and not p.name.startswith(".")
                  and unit_in_file_name(p.name) == link.unit_code] if inbox.is_dir() else []
        submission = self.store.submit(inbox=inbox, name=name, data=pending.data, link=link, period=period.label,
                                       criticals=pending.result.criticals, warnings=pending.result.warnings,
                                       explanation=explanation, correction_reason=reason, others=others,
                                       note_path=submission_note_path(inbox / name))
        log.info("submission %s: unit %s, period %s, file %s (sha256 %s), %s critical", submission.id, link.unit_code,
                 period.label, inbox / name, submission.sha256, submission.criticals)
        published = (var_dir() / "publish" / period.label).is_dir()
        if submission.replaces is not None or published:
            self.announcer.announce(submission, unit["unit_name"], period)
        return submission

    # ------------------------------------------------------------ the board

    def board(self, period: Period) -> list[dict]:
        """Every unit expected to send a workbook for the period (those the spreadsheet source
        covers, and any unit given a link), with its submission in force."""
        in_force = units_in_force(self.units, period.end)
        linked = {row["unit_code"] for row in self.store.links(period.label) if row["role"] == "unit"}
        current = {s.unit_code: s for s in self.store.current(period.label)}
        due = self.due(period)
        zone = ZoneInfo(self.settings.timezone)
        rows = []
        for unit in in_force.to_dict("records"):
            code = unit["unit_code"]
            if code not in linked and code not in current and self.source.coverage(code, unit["level"], period) is None:
                continue
            submission = current.get(code)
            row = {"unit_code": code, "unit_name": unit["unit_name"], "level": LEVEL_LABELS.get(unit["level"], unit["level"]),
                   "submission": submission, "status": "missing", "corrections": 0}
            if submission is not None:
                local = submission.submitted_at.astimezone(zone)
                row.update(status="late" if local.date() > due else "on_time", submitted_local=local,
                           corrections=len(self.store.history(period.label, code)) - 1)
            rows.append(row)
        order = {"missing": 0, "late": 1, "on_time": 2}
        rows.sort(key=lambda r: (order[r["status"]], -(r["submission"].criticals if r["submission"] else 0), r["unit_code"]))
        return rows


# ---------------------------------------------------------------- pages

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(FIGURES=FIGURES, COLUMN_NUMBER=COLUMN_NUMBER, FIGURE_HEADERS=FIGURE_HEADERS,
                             SEVERITY_VI=SEVERITY_VI)
templates.env.filters["number"] = lambda v: "" if v is None else f"{v:,}".replace(",", ".")
templates.env.filters["dmy"] = lambda d: "" if d is None else f"{d:%d/%m/%Y}"
templates.env.filters["dmyhm"] = lambda d: "" if d is None else f"{d:%H:%M %d/%m/%Y}"
templates.env.filters["tz"] = ZoneInfo
_PERSONAL_TEXT = re.compile(r"(?<!\d)(?:0\d{11}|(?:\+84|0)(?:3|5|7|8|9)\d{8})(?!\d)")
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; "
                                               "frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                    "X-Frame-Options": "DENY"}


def _page(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _not_found(request: Request) -> HTMLResponse:
    return _page(request, "message.html", {"title": "Đường dẫn không hợp lệ",
                                           "message": "Đường dẫn này không đúng, đã hết hiệu lực hoặc đã bị thu hồi. "
                                                      "Hãy liên hệ Văn phòng UBND tỉnh để được cấp đường dẫn mới."}, 404)


def _link(request: Request, role: str) -> Link | None:
    intake: Intake = request.app.state.intake
    try:
        link = intake.store.link(request.path_params["token"])
    except UnknownLink:
        return None
    return link if link.role == role else None


def _unit_context(request: Request, link: Link) -> dict:
    intake: Intake = request.app.state.intake
    period = intake.period(link.period)
    unit = intake.unit(link.unit_code, period)
    current = intake.store.current(period.label, link.unit_code)
    return {"intake": intake, "link": link, "period": period, "unit": unit, "due": intake.due(period),
            "current": current[0] if current else None, "token": request.path_params["token"],
            "fields": intake.fields_of(unit["level"]), "today": intake.today()}


async def home(request: Request) -> Response:
    return _page(request, "message.html", {
        "title": "Nộp Biểu 06 của đơn vị",
        "message": "Mỗi đơn vị dùng đường dẫn riêng do Văn phòng UBND tỉnh cấp cho từng kỳ báo cáo để tải biểu mẫu, "
                   "tự kiểm tra và nộp Biểu 06."})


async def unit_page(request: Request) -> Response:
    link = _link(request, "unit")
    if link is None:
        return _not_found(request)
    context = _unit_context(request, link)
    context["submitted"] = request.query_params.get("da-nop") == "1"
    return _page(request, "unit.html", context)


async def form_download(request: Request) -> Response:
    link = _link(request, "unit")
    if link is None:
        return _not_found(request)
    context = _unit_context(request, link)
    period, unit = context["period"], context["unit"]
    folder = Path(tempfile.mkdtemp(prefix="tthc_form_"))
    name = f"Bieu06_{unit['unit_code']}_{period.label}.xlsx"
    await run_in_threadpool(partial(
        write_unit_form, folder / name, unit_code=unit["unit_code"], unit_name=unit["unit_name"],
        unit_level=unit["level"], period_start=period.start, period_end=period.end, period_label=period.label,
        fields=context["fields"]))
    return FileResponse(folder / name, filename=name, headers=SECURITY_HEADERS,
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


async def _read_form(request: Request, cap: int):
    """The posted form, refused unread past `cap` bytes (whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    slack = 64 * 1024  # the multipart envelope and the other fields
    if declared and declared.isdigit() and int(declared) > cap + slack:
        raise Refused(too_big(int(declared), cap))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap + slack:
            raise Refused(too_big(len(body), cap))

    async def replay():
        yield bytes(body)

    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await MultiPartParser(request.headers, replay(), max_files=1, max_fields=6,
                                         max_part_size=64 * 1024).parse()
        return await FormParser(request.headers, replay()).parse()
    except MultiPartException as exc:
        raise Refused("Không đọc được dữ liệu gửi lên: hãy chọn tệp và bấm “Kiểm tra” lại.", str(exc)) from None


async def check(request: Request) -> Response:
    link = _link(request, "unit")
    if link is None:
        return _not_found(request)
    intake: Intake = request.app.state.intake
    context = _unit_context(request, link)
    if not intake.allow_upload(link):
        context["refusal"] = Refused(f"Đã tải lên {intake.options.uploads_per_minute} lần trong một phút: hãy đợi một "
                                     "phút rồi thử lại.")
        return _page(request, "unit.html", context, 429)
    try:
        form = await _read_form(request, intake.limits.max_file_bytes)
        upload = form.get("tep")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise Refused("Chưa chọn tệp: hãy chọn tệp Biểu 06 (.xlsx hoặc .csv) rồi bấm “Kiểm tra”.")
        data = await upload.read()
        result = await run_in_threadpool(check_upload, data, upload.filename, link.unit_code, context["period"],
                                         intake.settings, intake.units, intake.limits)
    except Refused as refusal:
        log.info("upload refused for unit %s, period %s: %s (%s)", link.unit_code, link.period, refusal, refusal.detail)
        context["refusal"] = refusal
        return _page(request, "unit.html", context, 422)
    context.update(result=result, filename=upload.filename,
                   check_id=intake.keep_pending(link, upload.filename, data, result))
    return _page(request, "check.html", context)


async def submit(request: Request) -> Response:
    link = _link(request, "unit")
    if link is None:
        return _not_found(request)
    intake: Intake = request.app.state.intake
    context = _unit_context(request, link)
    try:
        form = await _read_form(request, 0)
    except Refused as refusal:
        context["refusal"] = refusal
        return _page(request, "unit.html", context, 422)
    pending = intake.take_pending(link, str(form.get("check_id") or ""))
    if pending is None:
        context["refusal"] = Refused(f"Lần kiểm tra này đã quá {PENDING_MINUTES} phút hoặc không còn: hãy tải tệp lên "
                                     "và kiểm tra lại trước khi nộp.")
        return _page(request, "unit.html", context, 409)
    explanation = str(form.get("giai_trinh") or "").strip() or None
    reason = str(form.get("ly_do_sua") or "").strip() or None
    problem = None
    if pending.result.criticals and not explanation:
        problem = (f"Biểu còn {pending.result.criticals} lỗi nghiêm trọng: hãy sửa trong tệp rồi kiểm tra lại, hoặc ghi "
                   "giải trình vì sao số liệu đúng như vậy.")
    elif context["current"] is not None and not reason:
        problem = "Đơn vị đã nộp biểu của kỳ này: hãy ghi lý do sửa (số liệu nào thay đổi, vì sao) để nộp bản thay thế."
    elif any(text and len(text) > MAX_TEXT for text in (explanation, reason)):
        problem = f"Giải trình và lý do sửa mỗi phần tối đa {MAX_TEXT} ký tự."
    elif any(text and _PERSONAL_TEXT.search(text) for text in (explanation, reason)):
        problem = "Giải trình hoặc lý do sửa có số điện thoại hoặc số căn cước: không ghi thông tin cá nhân vào đây."
    if problem:
        context.update(result=pending.result, filename=pending.filename, check_id=form.get("check_id"),
                       problem=problem, explanation=explanation or "", reason=reason or "")
        return _page(request, "check.html", context, 422)
    intake.pending.pop(str(form.get("check_id")), None)  # one submission per check, even when sent twice at once
    await run_in_threadpool(intake.submit, link, context["period"], context["unit"], pending, explanation, reason)
    return RedirectResponse(f"/u/{request.path_params['token']}?da-nop=1", status_code=303,
                            headers=SECURITY_HEADERS)


async def board(request: Request) -> Response:
    link = _link(request, "province")
    if link is None:
        return _not_found(request)
    intake: Intake = request.app.state.intake
    label = request.query_params.get("ky") or link.period or intake.settings.period(
        _current_label(intake.today())).label
    try:
        period = intake.period(label)
    except ValueError:
        return _page(request, "message.html", {"title": "Kỳ không hợp lệ",
                                               "message": f"Kỳ {label!r} không đúng dạng (ví dụ 2025-Q2)."}, 400)
    rows = intake.board(period)
    counts = {k: sum(r["status"] == k for r in rows) for k in ("missing", "late", "on_time")}
    counts["criticals"] = sum(1 for r in rows if r["submission"] and r["submission"].criticals)
    return _page(request, "board.html", {"period": period, "rows": rows, "counts": counts, "due": intake.due(period),
                                         "token": request.path_params["token"]})


def _current_label(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def create_app(settings: Settings, *, store: Store | None = None, announcer: Announcer | None = None) -> Starlette:
    """The intake application; its store under the working folder unless given."""
    intake = Intake(settings, store or Store(var_dir() / "intake"), IntakeOptions.from_settings(settings),
                    announcer or Announcer.from_environment())
    app = Starlette(routes=[
        Route("/", home),
        Route("/u/{token}", unit_page),
        Route("/u/{token}/bieu-mau.xlsx", form_download),
        Route("/u/{token}/kiem-tra", check, methods=["POST"]),
        Route("/u/{token}/nop", submit, methods=["POST"]),
        Route("/tinh/{token}", board),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ])
    app.state.intake = intake
    return app
