"""Locks that keep two runs of one period from stepping on each other.

- `run_lock`: the whole `tthc run` of a period, a non-blocking `flock` on
  `var/locks/<period>.lock`; a second run refuses at once and says who holds it.
- `file_lock`: a blocking `flock` on any file (the DuckDB warehouse's lock beside it), logging
  once when it has to wait.

`flock` locks belong to the open file: a process killed with SIGKILL releases them with its
file descriptors, so a crashed run never leaves a stale lock behind (the lock file stays, empty
of meaning).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


class RunInProgress(RuntimeError):
    """Another run of the same period holds its lock."""


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "pid unknown"
    host = holder.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"pid {holder.get('pid', '?')}{where}, since {holder.get('since', '?')}"


def _stamp(fd: int, **extra) -> None:
    doc = {"pid": os.getpid(), "host": socket.gethostname(),
           "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(doc).encode("utf-8"), 0)


@contextmanager
def _flock(path: Path, on_busy, **stamp) -> Iterator[None]:
    """An exclusive `flock` on `path` (created if missing) for the block, its holder written into
    the file; `on_busy(holder description)` is called when another process holds it, and either
    raises or returns to wait for it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_busy(_describe(_holder(fd)))
            fcntl.flock(fd, fcntl.LOCK_EX)
        _stamp(fd, **stamp)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def run_lock(var: Path, period_label: str, run_id: str | None = None) -> Iterator[Path]:
    """Hold the period's run lock for the block, or raise RunInProgress at once."""
    path = Path(var) / "locks" / f"{period_label}.lock"

    def refuse(holder: str) -> None:
        raise RunInProgress(f"another run for {period_label} is in progress ({holder}); lock file {path}") from None

    with _flock(path, refuse, run_id=run_id):
        yield path


@contextmanager
def file_lock(path: Path, what: str) -> Iterator[None]:
    """Wait for an exclusive `flock` on `path` (created if missing) for the block."""
    def wait(holder: str) -> None:
        log.warning("waiting for %s: held by %s (lock file %s)", what, holder, path)

    with _flock(path, wait, what=what):
        yield
