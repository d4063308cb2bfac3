"""The one-stop-shop HTTP API of the sample (docs/sample-sources.md, "Sample HTTP server").

Serves `portal/dossiers.parquet` the way the provincial software does: bearer token, a date
window, an optional updated-since filter, pages ordered by MaHoSo by page number or by cursor.
Faults can be switched on (`SampleServer.faults`) to test clients against the ways real
servers misbehave. The standard library's server is enough for a local
stand-in and keeps the sample free of web-framework dependencies. The data is loaded once
and the window filter works on numpy copies of the two dates it needs, so paging through a
full-scale quarter stays cheap.
"""
from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tthc.portal import STAMP_FORMAT

API_PATH = "/api/v1/hoso"
HEALTH_PATH = "/health"
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
TOKEN_ENV = "TTHC_SAMPLE_TOKEN"
NEVER = np.iinfo(np.int64).max
WINDOWS_CACHED = 16


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class PortalData:
    """The portal's dossiers sorted by MaHoSo, and the received/finished moments as seconds
    (a dossier never finished counts as finished at NEVER)."""

    def __init__(self, path: Path):
        table = pq.read_table(path)
        ids = table["MaHoSo"]
        if len(ids) > 1 and not pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py():
            table = table.take(pc.sort_indices(ids))
        self.table = table.combine_chunks()  # take() on a chunked table concatenates every call
        self.ids = self.table["MaHoSo"].to_numpy(zero_copy_only=False).astype(str)
        self.received = self._seconds(self.table["NgayTiepNhan"])
        self.finished = self._seconds(self.table["NgayKetThucXuLy"])
        self.updated = self._seconds(self.table["NgayCapNhat"]) if "NgayCapNhat" in self.table.column_names \
            else self.received
        self._windows: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _seconds(stamps: pa.ChunkedArray) -> np.ndarray:
        moments = pc.strptime(stamps, format=STAMP_FORMAT, unit="s").to_numpy()
        return np.where(np.isnat(moments), NEVER, moments.astype(np.int64))

    def window(self, first_day: date, last_day: date, updated_since: int | None = None) -> np.ndarray:
        """Row numbers of the dossiers active in the window: received by the end of
        `last_day`, and not finished before `first_day`; with `updated_since` (epoch
        seconds, local time), only those updated at or after it."""
        key = (first_day, last_day, updated_since)
        with self._lock:
            if key in self._windows:
                self._windows.move_to_end(key)
                return self._windows[key]
        start = _epoch_seconds(first_day)
        end = _epoch_seconds(last_day + timedelta(days=1))
        selected = (self.received < end) & (self.finished >= start)
        if updated_since is not None:
            selected &= self.updated >= updated_since
        rows = np.flatnonzero(selected)
        with self._lock:
            self._windows[key] = rows
            while len(self._windows) > WINDOWS_CACHED:
                self._windows.popitem(last=False)
        return rows

    def rows_of(self, ids: list[str]) -> np.ndarray:
        found = np.searchsorted(self.ids, np.asarray(ids, dtype=str))
        return np.array(sorted(int(r) for r, i in zip(found, ids) if r < len(self.ids) and self.ids[r] == i), np.int64)

    def after(self, rows: np.ndarray, last_id: str) -> int:
        """Position in `rows` of the first dossier whose MaHoSo sorts after `last_id`."""
        return int(np.searchsorted(rows, np.searchsorted(self.ids, last_id, side="right")))

    def records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return self.table.take(pa.array(rows, pa.int64())).to_pylist()


def _epoch_seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400


def parse_query(query: str) -> dict[str, Any]:
    """tuNgay, denNgay (yyyyMMdd, required), page (from 1), pageSize (1 to MAX_PAGE_SIZE),
    capNhatTu (yyyyMMddHHmmss, optional: updated at or after), cursor (optional: keyset
    paging; empty for the first page, then the previous answer's nextCursor)."""
    values = parse_qs(query, keep_blank_values=True)

    def one(name: str, default: str | None = None) -> str | None:
        given = values.get(name)
        if given is None:
            return default
        if len(given) > 1:
            raise BadParameter(name, f"{name} is given {len(given)} times")
        return given[0]

    def day(name: str) -> date:
        text = one(name)
        if text is None or text == "":
            raise BadParameter(name, f"{name} is required (yyyyMMdd)")
        if len(text) != 8 or not (text.isascii() and text.isdigit()):
            raise BadParameter(name, f"{name} {text!r}: expected a date as yyyyMMdd")
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise BadParameter(name, f"{name} {text!r}: not a calendar date") from None

    def whole(name: str, default: int, low: int, high: int | None) -> int:
        text = one(name, str(default))
        if not (text.isascii() and text.isdigit()):
            raise BadParameter(name, f"{name} {text!r}: expected a whole number")
        number = int(text)
        if number < low or (high is not None and number > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise BadParameter(name, f"{name} {number}: must be {limit}")
        return number

    def moment(name: str) -> int | None:
        text = one(name)
        if text is None:
            return None
        try:
            stamp = datetime.strptime(text, STAMP_FORMAT) if len(text) == 14 and text.isdigit() else None
        except ValueError:
            stamp = None
        if stamp is None:
            raise BadParameter(name, f"{name} {text!r}: expected a moment as yyyyMMddHHmmss")
        return int((stamp - datetime(1970, 1, 1)).total_seconds())

    def cursor(name: str) -> str | None:
        text = one(name)
        if not text:
            return text
        try:
            return base64.urlsafe_b64decode(text.encode("ascii") + b"==").decode("utf-8")
        except (ValueError, UnicodeError):
            raise BadParameter(name, f"{name} {text!r}: not a cursor this server gave") from None

    first_day, last_day = day("tuNgay"), day("denNgay")
    if last_day < first_day:
        raise BadParameter("denNgay", f"denNgay {last_day:%Y%m%d} is before tuNgay {first_day:%Y%m%d}")
    return {
        "tuNgay": first_day,
        "denNgay": last_day,
        "page": whole("page", 1, 1, None),
        "pageSize": whole("pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        "capNhatTu": moment("capNhatTu"),
        "cursor": cursor("cursor"),
    }


def make_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode("utf-8")).decode("ascii").rstrip("=")


class SampleServer:
    """A running sample server.

    Faults (`faults`, empty by default), for tests of clients:
    - `faults["queue"]`: a list consumed one entry per API request, in order; an entry is
      None (answer normally), `{"status": 503}` (an error status, with `"retry_after": s`
      for a Retry-After header), `{"slow": s}` (wait s seconds, then answer normally),
      `{"reset": True}` (drop the connection with a TCP reset), `{"truncate": True}` (a 200
      whose JSON body is cut short, Content-Length matching), `{"cut": True}` (a 200 that
      announces the whole body and closes halfway);
    - `faults["drift"]`: `{"after_pages": n, "appear": [ids], "vanish": [ids]}`: the `appear`
      dossiers are hidden until n pages have been served, the `vanish` ones disappear then,
      as when records are inserted or deleted while a client is paging.
    `api_requests` counts the requests that reached the API (after authentication).
    """

    def __init__(self, data: PortalData, token: str, host: str = "127.0.0.1", port: int = 0):
        if not token:
            raise ValueError("the sample server needs a non-empty token")
        self.data = data
        self.faults: dict[str, Any] = {}
        self.api_requests = 0
        self.pages_served = 0
        self._fault_lock = threading.Lock()
        self._token = token.encode("utf-8")
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.sample = self
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"tthc-sample-{self.port}", daemon=True)
        self._thread.start()

    def authorised(self, header: str | None) -> bool:
        """A bearer token, or basic auth whose password is the token (any login), as some
        one-stop-shop software asks for."""
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                _, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(password.encode("utf-8"), self._token)
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("utf-8"), self._token)

    def _inject_fault(self, handler: "_Handler") -> bool:
        """Answer the request with the next queued fault and return True, or return False."""
        with self._fault_lock:
            self.api_requests += 1
            queue = self.faults.get("queue")
            fault = queue.pop(0) if queue else None
        if not fault:
            return False
        if "slow" in fault:
            time.sleep(float(fault["slow"]))
            return False
        if "status" in fault:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
            handler._json(HTTPStatus(int(fault["status"])), {"error": "fault", "message": f"injected {fault['status']}"},
                          headers)
        elif fault.get("reset"):
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
        elif fault.get("truncate") or fault.get("cut"):
            payload = json.dumps({"total": 1, "page": 1, "data": [{"MaHoSo": "x" * 200}]}).encode("utf-8")
            half = payload[: len(payload) // 2]
            handler.send_response(HTTPStatus.OK)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload) if fault.get("cut") else len(half)))
            handler.end_headers()
            handler.wfile.write(half)
            handler.wfile.flush()
            handler.close_connection = True
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return True

    def visible(self, rows: np.ndarray) -> np.ndarray:
        """The window's rows as a client paging now sees them (pagination drift)."""
        drift = self.faults.get("drift")
        if not drift:
            return rows
        with self._fault_lock:
            drifted = self.pages_served >= int(drift.get("after_pages", 1))
        hidden = drift.get("vanish", []) if drifted else drift.get("appear", [])
        if not hidden:
            return rows
        return rows[~np.isin(rows, self.data.rows_of(list(hidden)))]

    def page_served(self) -> None:
        with self._fault_lock:
            self.pages_served += 1

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "SampleServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tthc-sample/1"

    @property
    def sample(self) -> SampleServer:
        return self.server.sample

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == HEALTH_PATH:
            self._json(HTTPStatus.OK, {"status": "ok"})
        elif url.path != API_PATH:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not_found", "message": f"no resource {url.path}"})
        elif not self.sample.authorised(self.headers.get("Authorization")):
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized", "message": "a valid bearer token is required"},
                       {"WWW-Authenticate": 'Bearer realm="tthc-sample"'})
        elif not self.sample._inject_fault(self):
            self._dossiers(url.query)

    def _dossiers(self, query: str) -> None:
        try:
            params = parse_query(query)
        except BadParameter as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "bad_parameter", "parameter": exc.parameter, "message": str(exc)})
            return
        data = self.sample.data
        rows = self.sample.visible(data.window(params["tuNgay"], params["denNgay"], params["capNhatTu"]))
        size = params["pageSize"]
        if params["cursor"] is None:
            first = (params["page"] - 1) * size
            page = rows[first:first + size]
            body = {"total": int(rows.size), "page": params["page"], "pageSize": size}
        else:
            first = data.after(rows, params["cursor"]) if params["cursor"] else 0
            page = rows[first:first + size]
            more = first + size < rows.size
            body = {"total": int(rows.size), "pageSize": size,
                    "nextCursor": make_cursor(str(data.ids[page[-1]])) if more and page.size else None}
        body["data"] = data.records(page) if page.size else []
        self._json(HTTPStatus.OK, body)
        self.sample.page_served()

    def _json(self, status: HTTPStatus, body: dict, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        """Quiet: an extraction makes thousands of requests."""

    def handle(self) -> None:
        """A client that gave up (timeout, reset) is not the server's error: stay quiet."""
        try:
            super().handle()
        except (ConnectionError, OSError):
            self.close_connection = True


def serve(sample_dir: Path | str, token: str, host: str = "127.0.0.1", port: int = 0) -> SampleServer:
    """Load the sample's portal data and serve it from a daemon thread."""
    return SampleServer(PortalData(Path(sample_dir) / "portal" / "dossiers.parquet"), token, host, port)


def read_token(sample_dir: Path, token_file: Path | None) -> str:
    """The token from --token-file, else TTHC_SAMPLE_TOKEN, else the sample's own token file."""
    if token_file is not None:
        return token_file.read_text(encoding="utf-8").strip()
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    info = sample_dir / "sample.json"
    if info.is_file():
        name = json.loads(info.read_text(encoding="utf-8")).get("token_file")
        if name and (sample_dir / name).is_file():
            return (sample_dir / name).read_text(encoding="utf-8").strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    from tthc.config import var_dir

    parser = argparse.ArgumentParser(prog="python -m simulator.server", description="Serve the sample's portal API.")
    parser.add_argument("--sample", type=Path, default=None, help="sample folder (default: <var dir>/sample)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token-file", type=Path, default=None)
    args = parser.parse_args(argv)
    sample_dir = args.sample or var_dir() / "sample"
    if not (sample_dir / "portal" / "dossiers.parquet").is_file():
        print(f"{sample_dir}: no sample here; write one with `python -m simulator`", file=sys.stderr)
        return 2
    token = read_token(sample_dir, args.token_file)
    if not token:
        print(f"no token: pass --token-file, set {TOKEN_ENV}, or generate the sample again", file=sys.stderr)
        return 2

    server = serve(sample_dir, token, args.host, args.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(server.url, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
