"""One-stop-shop HTTP API in the national-portal sync shape (domain.md §5).

Only the fields statistics need are kept: everything else a record carries, personal data
included, is dropped here and never lands.

Every call has a timeout; connection errors, 5xx and 429 (honouring Retry-After) are retried
with exponential backoff and jitter by urllib3 within a time budget per call, as are bodies
cut short or not valid JSON; any other 4xx fails at once with the body. Pages are written to
the landing file as they arrive. A pass over the pages that sees the records shift (the total
changing, a record repeated or out of order, fewer records than the reported total) is thrown
away and paged again, so that what lands has every record exactly once or nothing lands.

Completeness is proved, not assumed: a page that brings no record not already seen (a server
repeating a page) fails the source at once; answers without a `total` fail it when the
registry says the API reports totals (`reports_total`); a page shorter than asked while more
records follow (a server capping the page size) fails it; paging stops at `max_pages` and at
an overall time budget per source (`budget_seconds_total`); and a whole-window extraction
with far fewer records than the landing it would replace (`max_shrink`) fails it.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ResponseError
from urllib3.util.retry import Retry

from extractors.base import ExtractError, ExtractJob, Rejected, RunBudgetSpent, SourceDataError, SourceUnavailable, finish
from tthc.config import Source
from tthc.connections import ConnectionInfo, get_connection
from tthc.landing import RAW_COLUMNS, RECORDS, CanonicalSelect, Manifest, ParquetLanding, landed_column
from tthc.periods import Period
from tthc.portal import (DIGITISED_FIELD, KEPT_FIELDS, KEY, LANDING_SCHEMA, PAID_ONLINE_CODES, PORTAL_COLUMNS,
                         STAMP_FORMAT, UPDATED)

log = logging.getLogger(__name__)

KIND = "http_api"
BASIS = RECORDS
LANDED_FILE = "dossiers.parquet"
RETRY_STATUSES = (429, 500, 502, 503, 504)
PAGINATION_STYLES = ("page", "cursor")
DEFAULT_MAX_PAGES = 10_000
DEFAULT_BUDGET_SECONDS_TOTAL = 3600.0
DEFAULT_MAX_SHRINK = 0.5
SHOWN_IDS = 5  # repeated ids named in an error


class BoundedRetry(Retry):
    """urllib3's Retry that also gives up once the next wait would pass a deadline."""

    def __init__(self, *args, give_up_at: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.give_up_at = give_up_at

    def new(self, **kwargs) -> "BoundedRetry":
        retry = super().new(**kwargs)
        retry.give_up_at = self.give_up_at
        return retry

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        after = retry.get_retry_after(response) if response is not None and retry.respect_retry_after_header else None
        wait = after if after is not None else retry.get_backoff_time()
        if self.give_up_at is not None and time.monotonic() + wait > self.give_up_at:
            what = f"HTTP {response.status}" if response is not None else f"{type(error).__name__}: {error}"
            raise MaxRetryError(_pool, url, ResponseError(
                f"{what}; the next attempt (in {wait:.1f}s) would pass the retry time budget"))
        return retry


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    jitter_seconds: float = 0.5
    budget_seconds: float = 300.0  # per call, retries included

    @classmethod
    def from_spec(cls, spec: dict) -> "RetryPolicy":
        given = spec.get("retries") or {}
        return cls(**{k: type(getattr(cls, k))(v) for k, v in given.items() if k in cls.__dataclass_fields__})

    def start(self, deadline: float | None = None) -> BoundedRetry:
        give_up_at = time.monotonic() + self.budget_seconds
        return BoundedRetry(
            total=self.attempts, connect=self.attempts, read=self.attempts, status=self.attempts,
            other=self.attempts, backoff_factor=self.backoff_seconds, backoff_jitter=self.jitter_seconds,
            backoff_max=self.backoff_max_seconds, status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}), respect_retry_after_header=True, raise_on_status=False,
            give_up_at=give_up_at if deadline is None else min(give_up_at, deadline),
        )


def session_for(conn: ConnectionInfo) -> tuple[requests.Session, HTTPAdapter]:
    """A session authenticated from the connection (bearer token, or basic login)."""
    session = requests.Session()
    adapter = HTTPAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    auth_type = str(conn.extra.get("auth_type", "bearer" if conn.password and not conn.login else "basic")).lower()
    if auth_type in ("bearer", "token") and conn.password:
        session.headers["Authorization"] = f"Bearer {conn.password}"
    elif conn.login:
        session.auth = (conn.login, conn.password or "")
    session.headers["Accept"] = "application/json"
    return session, adapter


class Client:
    """GETs JSON pages of one endpoint under the retry policy."""

    def __init__(self, source_id: str, url: str, conn: ConnectionInfo, timeout: float, policy: RetryPolicy):
        self.source_id, self.url, self.timeout, self.policy = source_id, url, timeout, policy
        self.session, self.adapter = session_for(conn)
        self.redact = conn.redact  # a server may echo the credentials it was sent: never pass them on
        self.calls = 0
        self.deadline: float | None = None  # the source's overall time budget (time.monotonic())
        self.budget_seconds_total: float | None = None
        self.run_deadline: float | None = None  # the run's budget (reliability.run_budget_seconds), if sooner
        self.run_budget_seconds: float | None = None

    def limit_to_run(self, deadline: float | None, budget_seconds: float | None) -> None:
        """The run's time budget ends paging too, when it is spent before the source's own."""
        if deadline is not None and (self.deadline is None or deadline < self.deadline):
            self.deadline, self.run_deadline, self.run_budget_seconds = deadline, deadline, budget_seconds

    def get(self, params: dict, where: str) -> dict:
        """One page; a call or its retries cut short by the deadline fail naming the budget spent."""
        try:
            return self._get(params, where)
        except SourceUnavailable as exc:
            # a call cut short by the deadline may end a moment before it
            if self.deadline is None or time.monotonic() < self.deadline - 0.25 or "is spent after" in str(exc):
                raise
            raise self._spent(where, f" ({exc})") from None

    def _spent(self, where: str, detail: str = "") -> SourceUnavailable:
        if self.run_deadline is not None and self.deadline == self.run_deadline:
            return RunBudgetSpent(f"{where}: the run's time budget ({self.run_budget_seconds:g}s, "
                                  f"reliability.run_budget_seconds) is spent after {self.calls} HTTP calls: nothing "
                                  f"landed{detail}")
        return SourceUnavailable(f"{where}: the source's overall time budget ({self.budget_seconds_total:g}s, "
                                 f"budget_seconds_total) is spent after {self.calls} HTTP calls: nothing landed{detail}")

    def _timeout(self) -> tuple[float, float]:
        """Connect and read timeouts of one call: never past the deadline."""
        read = self.timeout if self.deadline is None else max(min(self.timeout, self.deadline - time.monotonic()), 0.1)
        return min(read, 10), read

    def _get(self, params: dict, where: str) -> dict:
        self.check_budget(where)
        retry = self.policy.start(self.deadline)
        while True:
            self.adapter.max_retries = retry
            self.calls += 1
            try:
                response = self.session.get(self.url, params=params, timeout=self._timeout())
            except requests.exceptions.RetryError as exc:
                raise SourceUnavailable(f"{where}: gave up: {_reason(exc)}") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if isinstance(exc.args[0] if exc.args else None, MaxRetryError):
                    raise SourceUnavailable(f"{where}: {type(exc).__name__}: {_reason(exc)}") from None
                retry = self._again(retry, exc, where)  # the body broke off: urllib3 does not retry that
                continue
            except requests.RequestException as exc:
                raise SourceUnavailable(f"{where}: {type(exc).__name__}: {exc}") from None
            if response.status_code in RETRY_STATUSES:
                after = response.headers.get("Retry-After")
                raise SourceUnavailable(
                    f"{where}: HTTP {response.status_code}{f' (Retry-After {after})' if after else ''} still after "
                    f"retrying (at most {self.policy.attempts} retries within {self.policy.budget_seconds:g}s): "
                    f"{self.redact(response.text[:500])}")
            if response.status_code >= 400:
                raise SourceUnavailable(f"{where}: HTTP {response.status_code}: {self.redact(response.text[:500])}")
            try:
                body = json.loads(response.content)
            except ValueError as exc:
                retry = self._again(retry, exc, where, "the response is not valid JSON")
                continue
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                got = f"'data' is a JSON {type(body.get('data')).__name__}" if isinstance(body, dict) \
                    else f"a JSON {type(body).__name__}"
                raise SourceDataError(f"{where}: expected a JSON object with a 'data' list, got {got}: "
                                      f"{self.redact(response.text[:200])}")
            total = body.get("total")
            if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
                raise SourceDataError(f"{where}: 'total' is {total!r}, expected a count of dossiers")
            return body

    def check_budget(self, where: str) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self._spent(where)

    def _again(self, retry: BoundedRetry, exc: Exception, where: str, what: str | None = None) -> BoundedRetry:
        what = what or f"{type(exc).__name__}: {exc}"
        try:
            retry = retry.increment("GET", self.url, error=ProtocolError(what))
        except MaxRetryError as gave_up:
            raise SourceUnavailable(f"{where}: {what}; gave up: {_reason(gave_up)}") from None
        log.warning("%s: %s; retrying", where, what)
        retry.sleep()
        return retry

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None)
    return str(reason or inner)


@dataclass
class PassResult:
    rows: int = 0
    pages: int = 0
    totals: list[int] = field(default_factory=list)
    repeated: int = 0
    received: int = 0  # records the pages brought, repeated and rejected ones included
    repeated_at: list[tuple[int, list[str]]] = field(default_factory=list)  # (page, first repeated ids)
    max_updated: str | None = None
    # records that cannot be landed (not an object, no MaHoSo): (page, index, reason, kept fields)
    rejected: list[tuple[int, int, str, dict | None]] = field(default_factory=list)

    def drift(self) -> str | None:
        """Why this pass cannot be trusted, or None."""
        if len(set(self.totals)) > 1:
            return f"the reported total changed while paging ({self.totals[0]} → {self.totals[-1]})"
        if self.repeated:
            where = "; ".join(f"page {page}: {', '.join(ids)}" for page, ids in self.repeated_at[:3])
            return f"{self.repeated} records came again or out of {KEY} order ({where})"
        if self.totals and self.rows + len(self.rejected) != self.totals[-1]:
            return f"the API reported {self.totals[-1]} dossiers but {self.rows + len(self.rejected)} were extracted"
        return None


def _rejection(record) -> tuple[str | None, dict | None]:
    """Why a record cannot be landed (None when it can), and the fields that may be kept of it."""
    if not isinstance(record, dict):
        return f"the record is a JSON {type(record).__name__}, not an object", None
    kept = {n: record.get(n) for n in KEPT_FIELDS if n in record}
    dossier_id = record.get(KEY)
    if dossier_id is None or dossier_id == "":
        return f"no {KEY} (the dossier code)", kept
    if not isinstance(dossier_id, str):
        return f"{KEY} is {dossier_id!r} (a JSON {type(dossier_id).__name__}), expected the dossier code as text", kept
    return None, kept


def landing_schema(source: Source) -> pa.Schema:
    """The national-portal sync shape's kept fields, as text (tthc.portal)."""
    return LANDING_SCHEMA


_DATES = ("received_at", "due_at", "finished_at", "returned_at", "updated_at")


def canonical(source: Source) -> CanonicalSelect:
    """Wire fields → canonical columns (tthc.portal.PORTAL_COLUMNS); the registry's `mapping`
    gives the status and channel codes."""
    col = {name: landed_column(wire) for name, wire in PORTAL_COLUMNS.items()}
    paid = ", ".join(f"'{code}'" for code in PAID_ONLINE_CODES)
    values = {name: col[name] for name in ("dossier_id", "procedure_code", "field_code", "unit_code")}
    values |= {name: f"try_strptime({col[name]}, '{STAMP_FORMAT}')::TIMESTAMP_S" for name in _DATES}
    values |= {
        "fee_amount": f"try_cast({col['fee_amount']} AS BIGINT)",
        "paid_online": f"coalesce({col['paid_online']} IN ({paid}), false)",
        "results_digitised": f"coalesce(list_contains(json_extract_string({col['results_digitised']}, "
                             f"'$[*].{DIGITISED_FIELD}'), '1'), false)",
        "paused_at": "NULL::TIMESTAMP_S",  # the sync shape has no pause date
        "entered_at": "NULL::TIMESTAMP_S",  # nor when a record was entered
    }
    mapping = source.spec.get("mapping", {})
    return CanonicalSelect(values=values, raw={name: col[name] for name in RAW_COLUMNS},
                           codes={name: mapping.get(name, {}) for name in ("channel", "status")})


def extract(source: Source, period: Period, folder: Path, job: ExtractJob) -> Manifest:
    """Land the period's dossiers (or, with `job.updated_since`, those updated since then)."""
    updated_since = job.updated_since
    spec = source.spec
    style = spec.get("pagination", "page")
    if style not in PAGINATION_STYLES:
        raise SourceDataError(f"{source.id}: pagination {style!r}: expected one of {PAGINATION_STYLES}")
    conn = get_connection(source.connection_id)
    client = Client(source.id, conn.base_url + spec.get("endpoint", "/api/v1/hoso"), conn,
                    float(spec.get("timeout_seconds", 30)), RetryPolicy.from_spec(spec))
    params = {"tuNgay": period.start.strftime("%Y%m%d"), "denNgay": period.end.strftime("%Y%m%d"),
              "pageSize": int(spec.get("page_size", 1000))}
    if updated_since is not None:
        params[(spec.get("incremental") or {}).get("updated_since_param", "capNhatTu")] = updated_since.strftime(STAMP_FORMAT)
    max_passes = int(spec.get("max_passes", 3))
    limits = Limits(max_pages=int(spec.get("max_pages", DEFAULT_MAX_PAGES)),
                    reports_total=bool(spec.get("reports_total", True)))
    client.budget_seconds_total = float(spec.get("budget_seconds_total", DEFAULT_BUDGET_SECONDS_TOTAL))
    client.deadline = time.monotonic() + client.budget_seconds_total
    client.limit_to_run(job.deadline, job.budget_seconds)
    drifts: list[str] = []
    try:
        for attempt in range(1, max_passes + 1):
            landing = ParquetLanding(folder / LANDED_FILE, LANDING_SCHEMA)
            try:
                result = _one_pass(client, params, style, landing, bool(spec.get("ids_sorted", True)), limits)
            except BaseException:
                landing.abort()
                raise
            why = result.drift()
            if why is None:
                break
            landing.abort()
            drifts.append(f"pass {attempt}: {why}")
            log.warning("%s: pagination drift, paging again: %s", source.id, why)
        else:
            raise SourceDataError(f"{source.id}: {client.url}: the records kept shifting while paging, "
                                  f"nothing landed ({'; '.join(drifts)})")
    finally:
        client.close()
    file_info = landing.close()
    if updated_since is None:
        _check_shrink(source, client.url, file_info["rows"], job.previous, float(spec.get("max_shrink", DEFAULT_MAX_SHRINK)))
    rejected = [Rejected(
        ExtractError(f"{source.id}: {client.url} page {page} record {index}: {why}: not landed",
                     file=f"{client.url} page {page}", row=index, column=KEY, record_id=(fields or {}).get(KEY),
                     unit_code=(fields or {}).get("MaCoQuan"), location=f"{source.id}: page {page}, record {index}"),
        {"page": page, "record": index, "reason": why, "fields": fields})
        for page, index, why, fields in result.rejected]
    return finish(
        source, period, job, file_info, rejected=rejected, quarantine_name=f"{source.id}_rejected_records.jsonl",
        stats={"rejected_records": len(result.rejected), "pagination": style, "pages": result.pages,
               "passes": len(drifts) + 1, "drift": drifts,
               "reported_total": result.totals[-1] if result.totals else None, "duplicates_dropped": result.repeated,
               "http_calls": client.calls,
               "max_updated_at": _moment(result.max_updated),
               "updated_since": updated_since.isoformat() if updated_since else None},
    )


@dataclass(frozen=True)
class Limits:
    max_pages: int = DEFAULT_MAX_PAGES
    reports_total: bool = True


def _check_shrink(source: Source, url: str, rows: int, previous: Manifest | None, max_shrink: float) -> None:
    """A whole-window extraction with fewer records than `(1 - max_shrink)` × the landing it
    would replace fails: the previous landing stays."""
    if previous is None or previous.status != "ok" or not previous.rows:
        return
    if rows < (1 - max_shrink) * previous.rows:
        raise SourceDataError(
            f"{source.id}: {url}: {rows} records extracted for the window, fewer than "
            f"{1 - max_shrink:.0%} of the {previous.rows} of the previous landing (run {previous.run_id}, "
            f"{previous.extracted_at}; max_shrink {max_shrink:g}): the previous landing is kept")


def _one_pass(client: Client, params: dict, style: str, landing: ParquetLanding, ids_sorted: bool,
              limits: Limits = Limits()) -> PassResult:
    """Pages through the window once; the next page is fetched while this one is written."""
    result = PassResult()
    size = params["pageSize"]
    last_id: str | None = None
    seen: set[str] | None = None if ids_sorted else set()
    short_page: tuple[int, int] | None = None  # (page, records) of a page shorter than asked

    def fetch(page: int, cursor: str) -> tuple[int, str, str, dict]:
        if page > limits.max_pages:
            raise SourceUnavailable(f"{client.source_id}: {client.url}: still more pages after {limits.max_pages} "
                                    f"(max_pages): paging stopped, nothing landed")
        query = {**params, "page": page} if style == "page" else {**params, "cursor": cursor}
        where = f"{client.source_id}: {client.url} page {page}"
        return page, cursor, where, client.get(query, where)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tthc-fetch") as pool:
        upcoming = pool.submit(fetch, 1, "")
        while upcoming is not None:
            page, cursor, where, body = upcoming.result()
            records = body["data"]
            if body.get("total") is not None:
                result.totals.append(int(body["total"]))
            elif limits.reports_total:
                raise SourceDataError(f"{where}: the API sends no total: cannot prove the landing is complete "
                                      f"(reports_total is true for {client.source_id})")
            if short_page is not None and records:
                raise SourceDataError(
                    f"{where}: page {short_page[0]} brought {short_page[1]} records although {size} were asked and "
                    f"it was not the last: the server's page size differs from page_size ({size}); "
                    f"set page_size to at most {short_page[1]}")
            result.received += len(records)
            upcoming = None
            if records:
                if style == "page" and len(records) >= size:
                    upcoming = pool.submit(fetch, page + 1, "")
                elif style == "page" and len(set(result.totals)) == 1 and result.received < result.totals[-1]:
                    raise SourceDataError(
                        f"{where}: {len(records)} records although {size} were asked, and {result.received} "
                        f"of the reported total {result.totals[-1]} so far: the server's page size differs "
                        f"from page_size ({size}); set page_size to at most {len(records)}")
                elif style == "page" and not result.totals:
                    short_page = (page, len(records))  # no total to tell: ask for the next page to be sure
                    upcoming = pool.submit(fetch, page + 1, "")
                elif style == "cursor" and body.get("nextCursor"):
                    if body["nextCursor"] == cursor:
                        raise SourceDataError(f"{where}: the API gave the same cursor again")
                    upcoming = pool.submit(fetch, page + 1, body["nextCursor"])
            if not records:
                break
            result.pages += 1
            kept, repeated = [], []
            for i, record in enumerate(records):
                why, fields = _rejection(record)
                if why is not None:
                    result.rejected.append((page, i + 1, why, fields))
                    continue
                dossier_id = record[KEY]
                if seen is not None:
                    if dossier_id in seen:
                        repeated.append(dossier_id)
                        continue
                    seen.add(dossier_id)
                elif last_id is not None and dossier_id <= last_id:
                    repeated.append(dossier_id)
                    continue
                else:
                    last_id = dossier_id
                kept.append(record)
            if repeated:
                result.repeated += len(repeated)
                result.repeated_at.append((page, repeated[:SHOWN_IDS]))
                if not kept and page > 1:
                    if upcoming is not None:
                        upcoming.cancel()
                    shown = ", ".join(repeated[:SHOWN_IDS]) + (", …" if len(repeated) > SHOWN_IDS else "")
                    order = "" if seen is not None else f" or not after {KEY} {last_id} (ids_sorted)"
                    raise SourceDataError(
                        f"{where}: every record of the page came before{order}: the API repeats pages "
                        f"({len(repeated)} repeated ids: {shown}); paging stopped")
            if kept:
                batch = pa.RecordBatch.from_arrays([_column([r.get(n) for r in kept]) for n in KEPT_FIELDS],
                                                   schema=LANDING_SCHEMA)
                landing.write_batch(batch)
                result.rows += len(kept)
                newest = pc.max(batch.column(KEPT_FIELDS.index(UPDATED))).as_py()
                if newest:
                    result.max_updated = max(result.max_updated or newest, newest)
    return result


def _column(values: list) -> pa.Array:
    """Wire values as text: strings as they are, numbers written out, lists and objects as JSON."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_as_text(v) for v in values], pa.string())
    if array.type == pa.string():
        return array
    if pa.types.is_integer(array.type) or array.type == pa.null():
        return array.cast(pa.string())
    return pa.array([_as_text(v) for v in values], pa.string())


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _moment(stamp: str | None) -> str | None:
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp, STAMP_FORMAT).isoformat()
    except ValueError:
        return None
