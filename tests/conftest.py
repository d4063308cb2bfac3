import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, port: int, how_to_start: str) -> None:
    """Under CI a missing server is a failure; elsewhere the test skips and says how to start it."""
    if service_available("127.0.0.1", port):
        return
    message = f"{name} is not running on 127.0.0.1:{port}; start it with: {how_to_start}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def var(tmp_path, monkeypatch):
    """An empty var/ for the test: landing, runs, warehouse and publish go there."""
    folder = tmp_path / "var"
    folder.mkdir()
    monkeypatch.setenv("TTHC_VAR_DIR", str(folder))
    monkeypatch.delenv("TTHC_WAREHOUSE_URL", raising=False)
    return folder


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory):
    """Sample sources at 2 % of a province (about 3,000 dossiers a quarter), made once."""
    from simulator.generate import generate

    folder = tmp_path_factory.mktemp("sample") / "sample"
    generate(folder, seed=5, scale=0.02)
    return folder
