"""Celery worker identity, a test helper for the distributed Airflow test: the task supervisor
imports nothing heavy when it asks for its hostname."""
from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """`[core] hostname_callable` for several Celery workers on one host: each records its own
    name (`TTHC_WORKER_NAME`) on the task instances it runs; otherwise the host's FQDN as usual."""
    return os.environ.get("TTHC_WORKER_NAME") or socket.getfqdn()
