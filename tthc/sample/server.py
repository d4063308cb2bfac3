"""The one-stop-shop HTTP API of the sample (docs/sample-sources.md, "Sample HTTP server").

Serves `portal/dossiers.parquet` the way the provincial software does: bearer token, a date
window, pages ordered by MaHoSo. The standard library's server is enough for a local
stand-in and keeps the sample free of web-framework dependencies. The data is loaded once
and the window filter works on numpy copies of the two dates it needs, so paging through a
full-scale quarter stays cheap.
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import signal
import sys
import threading
from collections import OrderedDict
from datetime import date, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

API_PATH = "/api/v1/hoso"
HEALTH_PATH = "/health"
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
TOKEN_ENV = "TTHC_SAMPLE_TOKEN"
STAMP_FORMAT = "%Y%m%d%H%M%S"
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
        self.received = self._seconds(self.table["NgayTiepNhan"])
        self.finished = self._seconds(self.table["NgayKetThucXuLy"])
        self._windows: OrderedDict[tuple[date, date], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _seconds(stamps: pa.ChunkedArray) -> np.ndarray:
        moments = pc.strptime(stamps, format=STAMP_FORMAT, unit="s").to_numpy()
        return np.where(np.isnat(moments), NEVER, moments.astype(np.int64))

    def window(self, first_day: date, last_day: date) -> np.ndarray:
        """Row numbers of the dossiers active in the window: received by the end of
        `last_day`, and not finished before `first_day`."""
        key = (first_day, last_day)
        with self._lock:
            if key in self._windows:
                self._windows.move_to_end(key)
                return self._windows[key]
        start = _epoch_seconds(first_day)
        end = _epoch_seconds(last_day + timedelta(days=1))
        rows = np.flatnonzero((self.received < end) & (self.finished >= start))
        with self._lock:
            self._windows[key] = rows
            while len(self._windows) > WINDOWS_CACHED:
                self._windows.popitem(last=False)
        return rows

    def records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return self.table.take(pa.array(rows, pa.int64())).to_pylist()


def _epoch_seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400


def parse_query(query: str) -> dict[str, Any]:
    """tuNgay, denNgay (yyyyMMdd, required), page (from 1), pageSize (1 to MAX_PAGE_SIZE)."""
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

    first_day, last_day = day("tuNgay"), day("denNgay")
    if last_day < first_day:
        raise BadParameter("denNgay", f"denNgay {last_day:%Y%m%d} is before tuNgay {first_day:%Y%m%d}")
    return {
        "tuNgay": first_day,
        "denNgay": last_day,
        "page": whole("page", 1, 1, None),
        "pageSize": whole("pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    }


class SampleServer:
    """A running sample server. `faults` is where fault injection will be configured; it is
    empty and nothing reads it yet beyond the `_inject_fault` hook."""

    def __init__(self, data: PortalData, token: str, host: str = "127.0.0.1", port: int = 0):
        if not token:
            raise ValueError("the sample server needs a non-empty token")
        self.data = data
        self.faults: dict[str, Any] = {}
        self._token = token.encode("utf-8")
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.sample = self
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"tthc-sample-{self.port}", daemon=True)
        self._thread.start()

    def authorised(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("utf-8"), self._token)

    def _inject_fault(self, handler: "_Handler") -> bool:
        """Answer the request with a configured fault and return True; no faults exist yet."""
        return False

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
        rows = self.sample.data.window(params["tuNgay"], params["denNgay"])
        first = (params["page"] - 1) * params["pageSize"]
        page = rows[first:first + params["pageSize"]]
        self._json(HTTPStatus.OK, {
            "total": int(rows.size), "page": params["page"], "pageSize": params["pageSize"],
            "data": self.sample.data.records(page) if page.size else [],
        })

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

    parser = argparse.ArgumentParser(prog="python -m tthc.sample.server", description="Serve the sample's portal API.")
    parser.add_argument("--sample", type=Path, default=None, help="sample folder (default: <var dir>/sample)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token-file", type=Path, default=None)
    args = parser.parse_args(argv)
    sample_dir = args.sample or var_dir() / "sample"
    if not (sample_dir / "portal" / "dossiers.parquet").is_file():
        print(f"{sample_dir}: no sample here; write one with `python -m tthc.sample`", file=sys.stderr)
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
