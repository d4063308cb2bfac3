"""The embedded default: the sample sources on this machine, wired as if they were real ones.

Starts the sample HTTP server and sets the `AIRFLOW_CONN_*` variables the sources registry
names, with a token made for this run only, for as long as the block lasts.
"""
from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tthc.config import var_dir


def sample_dir() -> Path:
    return var_dir() / "sample"


def ensure_sample(seed: int = 2024, scale: float = 1.0, folder: Path | None = None) -> Path:
    """Generate the sample sources unless the same seed and scale are already there."""
    from simulator.generate import generate

    folder = folder or sample_dir()
    info = folder / "sample.json"
    if info.exists():
        current = json.loads(info.read_text(encoding="utf-8"))
        if current.get("seed") == seed and float(current.get("scale", -1)) == float(scale):
            return folder
    generate(folder, seed=seed, scale=scale)
    return folder


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Sets (a value) or unsets (None) environment variables for the block, then puts back what
    was there before."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def vendor_connections(folder: Path) -> dict[str, str]:
    """The sample's Tân Dân and OpenCPS databases as connections. Tân Dân's tables are
    [Business].[HoSos] and [Catalog].[Groups] on SQL Server: the one SQLite file is attached
    under both schema names so that the preset's names resolve."""
    tandan = str((folder / "tandan" / "tandan.sqlite").resolve())
    return {
        "AIRFLOW_CONN_TTHC_TANDAN_DEPARTMENTS": json.dumps({
            "conn_type": "sqlite", "host": tandan, "extra": {"attach": {"Business": tandan, "Catalog": tandan}}}),
        "AIRFLOW_CONN_TTHC_OPENCPS_DEPARTMENTS": json.dumps({
            "conn_type": "sqlite", "host": str((folder / "opencps" / "opencps.sqlite").resolve())}),
    }


@contextmanager
def sample_connections(folder: Path | None = None) -> Iterator[dict[str, str]]:
    from simulator.server import serve

    folder = folder or sample_dir()
    token = secrets.token_urlsafe(24)
    server = serve(folder, token)
    env = {
        "AIRFLOW_CONN_TTHC_PORTAL_DVC": json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http",
            "password": token, "extra": {"auth_type": "bearer"}}),
        "AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT": json.dumps({
            "conn_type": "sqlite", "host": str((folder / "agency_db" / "agency.sqlite").resolve())}),
        **vendor_connections(folder),
        "TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH": str((folder / "spreadsheets").resolve()),
    }
    try:
        with environment(**env):
            yield env
    finally:
        server.shutdown()
