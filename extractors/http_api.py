"""One-stop-shop HTTP API in the national-portal sync shape (domain.md §5).

Only the fields statistics need are kept: everything else a record carries, personal data
included, is dropped here and never lands.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from extractors.base import Manifest, ParquetLanding, SourceDataError, SourceUnavailable, now_utc
from tthc.config import Source
from tthc.connections import ConnectionInfo, get_connection
from tthc.periods import Period

log = logging.getLogger(__name__)

# Wire fields kept at the boundary; any other field (ChuHoSo, SoGiayToChuHoSo, SoDienThoai,
# DiaChi, Email, …) is dropped.
KEPT_FIELDS = (
    "MaHoSo", "MaTTHC", "MaLinhVuc", "MaCoQuan", "KenhThucHien", "NgayTiepNhan", "NgayHenTra",
    "NgayKetThucXuLy", "NgayTra", "NgayCapNhat", "TrangThaiHoSo", "PhiLePhi",
    "DuocThanhToanTrucTuyen", "DanhSachGiayToKetQua",
)
LANDING_SCHEMA = pa.schema([pa.field(name, pa.string()) for name in KEPT_FIELDS])


def session_for(conn: ConnectionInfo, total_retries: int = 5) -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=total_retries,
        connect=total_retries,
        read=total_retries,
        status=total_retries,
        backoff_factor=0.5,
        backoff_jitter=0.3,
        backoff_max=30,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    auth_type = str(conn.extra.get("auth_type", "bearer" if conn.password and not conn.login else "basic")).lower()
    if auth_type == "bearer" and conn.password:
        session.headers["Authorization"] = f"Bearer {conn.password}"
    elif conn.login:
        session.auth = (conn.login, conn.password or "")
    session.headers["Accept"] = "application/json"
    return session


def extract(source: Source, period: Period, folder: Path, run_id: str) -> Manifest:
    spec = source.spec
    conn = get_connection(source.connection_id)
    url = conn.base_url + spec.get("endpoint", "/api/v1/hoso")
    page_size = int(spec.get("page_size", 1000))
    timeout = float(spec.get("timeout_seconds", 30))
    params = {"tuNgay": period.start.strftime("%Y%m%d"), "denNgay": period.end.strftime("%Y%m%d"), "pageSize": page_size}
    landing = ParquetLanding(folder / "dossiers.parquet", LANDING_SCHEMA)
    seen: set[str] = set()
    duplicates = 0
    reported_total = None
    page = 1
    with session_for(conn) as session:
        while True:
            body = _get_page(session, url, {**params, "page": page}, timeout, source.id)
            records = body.get("data")
            if not isinstance(records, list):
                raise SourceDataError(f"{source.id}: {url} page {page}: expected a JSON object with a 'data' list")
            reported_total = body.get("total", reported_total)
            if not records:
                break
            columns: dict[str, list] = {name: [] for name in KEPT_FIELDS}
            for i, record in enumerate(records):
                dossier_id = record.get("MaHoSo")
                if not dossier_id:
                    raise SourceDataError(f"{source.id}: {url} page {page} record {i + 1}: no MaHoSo")
                if dossier_id in seen:
                    duplicates += 1
                    continue
                seen.add(dossier_id)
                for name in KEPT_FIELDS:
                    columns[name].append(_as_text(record.get(name)))
            landing.write(columns)
            if len(records) < page_size:
                break
            page += 1
    file_info = landing.close()
    if reported_total is not None and int(reported_total) != len(seen):
        raise SourceDataError(
            f"{source.id}: the API reported {reported_total} dossiers for {period.label} but {len(seen)} were extracted"
        )
    return Manifest(
        source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok", extracted_at=now_utc(),
        run_id=run_id, files=[file_info], rows=file_info["rows"],
        stats={"pages": page, "duplicates_dropped": duplicates, "reported_total": reported_total},
    )


def _get_page(session: requests.Session, url: str, params: dict, timeout: float, source_id: str) -> dict:
    try:
        response = session.get(url, params=params, timeout=(min(timeout, 10), timeout))
    except requests.RequestException as exc:
        raise SourceUnavailable(f"{source_id}: {url} page {params['page']}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise SourceUnavailable(
            f"{source_id}: {url} page {params['page']}: HTTP {response.status_code}: {response.text[:500]}"
        )
    try:
        return response.json()
    except ValueError:
        raise SourceDataError(f"{source_id}: {url} page {params['page']}: the response is not valid JSON") from None


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
