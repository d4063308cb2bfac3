"""What extractors share: the job an extraction is given, the one error shape, the tail
'rejected records → errors → quarantine → manifest', staged landings swapped in whole, failure
notes, watermarks and the incremental merge. The landing contract itself (manifest, paths,
Parquet writing) is the vocabulary's: tthc/landing.py. The module contract of a source kind is
in docs/extractors.md ("Adding a source kind").

A landing folder is replaced as a whole: a new extraction is written beside the old one and
swapped in with renames, so a failed or killed extraction leaves the previous one intact.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from tthc.config import Settings, Source
from tthc.landing import LANDING, Manifest, ParquetLanding
from tthc.periods import Period


class SourceUnavailable(RuntimeError):
    """The source could not be reached or answered wrongly after retries."""


class RunBudgetSpent(SourceUnavailable):
    """The run's overall time budget ran out while the source was being extracted."""


class SourceDataError(ValueError):
    """A source answered with data that cannot be read; the message names where."""


class LandingWriteError(OSError):
    """The landing area cannot be written (disk full, file too large, read-only, not a
    folder); the message names the path. Nothing half-written is left in the landing."""


# errors of the file system, not of the source (a network error is an OSError too)
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EEXIST, errno.EIO}


def _landing_error(exc: BaseException, path: Path) -> LandingWriteError | None:
    if isinstance(exc, LandingWriteError) or not isinstance(exc, OSError) or isinstance(exc, ConnectionError):
        return None
    if exc.errno not in _DISK_ERRNOS:
        return None
    detail = exc.strerror or str(exc)
    named = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    error = LandingWriteError(f"cannot write the landing {path}: {detail}{named}")
    error.errno = exc.errno
    return error


@dataclass
class ExtractError:
    """A problem with one input (file, sheet, row, column, record) that did not stop the source:
    the one shape of `manifest.errors` and `manifest.warnings` for every kind."""

    message: str
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    record_id: str | None = None
    unit_code: str | None = None
    location: str | None = None  # where to look, for a person (`where`); by default file, sheet, row and column
    quarantined: str | None = None  # the copy in quarantine, when the input went there
    check: str | None = None  # the check its finding takes where it is not the usual one (tthc/checks.py)

    def where(self) -> str:
        if self.location is not None:
            return self.location
        parts = [self.file, f"sheet {self.sheet!r}" if self.sheet else None,
                 f"row {self.row}" if self.row else None, f"column {self.column}" if self.column else None]
        return ", ".join(p for p in parts if p)

    def as_dict(self) -> dict:
        """The error in `manifest.errors` / `manifest.warnings`."""
        return {"message": self.message, "file": self.file, "sheet": self.sheet, "row": self.row,
                "column": self.column, "record_id": self.record_id, "unit_code": self.unit_code,
                "where": self.where(), "quarantined": self.quarantined}


@dataclass(frozen=True)
class ExtractJob:
    """What an extraction is asked besides the source, the period and the staging folder: the
    same for every kind (`extract(source, period, folder, job)`)."""

    run_id: str
    settings: Settings | None = None
    quarantine_dir: Path | None = None  # var/quarantine/<period>/<source>/: inputs not landed go there
    updated_since: datetime | None = None  # incremental: only the records updated since then
    previous: Manifest | None = None  # the landing in place for the same window, if any (what a new one replaces)
    deadline: float | None = None  # time.monotonic() when the run's time budget is spent (reliability.run_budget_seconds)
    budget_seconds: float | None = None  # that budget, for the message

    def check_budget(self, source_id: str, done: str | None) -> None:
        """RunBudgetSpent once the run's time budget is spent; `done` says how far the source got
        (None: it was not started)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            spent = f"is spent after {done}: nothing landed" if done else "was spent before it was started: not tried"
            raise RunBudgetSpent(f"{source_id}: the run's time budget ({self.budget_seconds:g}s, "
                                 f"reliability.run_budget_seconds) {spent}")


@dataclass
class Rejected:
    """A record a source sent that is not landed: the error the manifest gives, and what
    quarantine keeps of it (its place, the reason, the fields the extractor may keep)."""

    error: ExtractError
    quarantined: dict


def finish(source: Source, period: Period, job: ExtractJob, file_info: dict, stats: dict, *,
           rejected: list[Rejected] = (), quarantine_name: str | None = None, errors: list[ExtractError] = (),
           warnings: list[ExtractError] = ()) -> Manifest:
    """The tail every kind shares: rejected records → errors → quarantine → manifest. The
    rejected records go to `job.quarantine_dir / quarantine_name` (JSON lines and a
    `.reason.txt`) and their errors name that file; they follow `errors` in the manifest."""
    from extractors.quarantine import quarantine_rejected

    rejected = list(rejected)
    if rejected and job.quarantine_dir is not None:
        path = quarantine_rejected(job.quarantine_dir, quarantine_name, [r.quarantined for r in rejected])
        for r in rejected:
            r.error.quarantined = str(path)
    return Manifest(
        source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok", extracted_at=now_utc(),
        run_id=job.run_id, files=[file_info], rows=file_info["rows"],
        errors=[e.as_dict() for e in [*errors, *(r.error for r in rejected)]],
        warnings=[w.as_dict() for w in warnings], stats=stats)


def inside(root: Path, name: str) -> Path:
    """`root / name` for a name that came from a source (a file name, a quarantine name): it
    must be a plain name that stays in `root`, never a path that writes elsewhere."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or os.sep in name:
        raise ValueError(f"{name!r} is not a plain file name: nothing is written for it outside {root}")
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{name!r} resolves outside {root}: nothing is written for it")
    return path


_IN_USE = ".in-use"


def _sweep_abandoned(parent: Path, name: str) -> None:
    """Remove the staging and old folders of `name` that no live process holds: left by an
    extraction killed before it could clean up. A live one holds a `flock` on its `.in-use`."""
    for stale in list(parent.glob(f".staging-{name}-*")) + list(parent.glob(f".old-{name}-*")):
        marker = stale / _IN_USE
        try:
            fd = os.open(marker, os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another extraction of the same source is writing it now
            shutil.rmtree(stale, ignore_errors=True)
        finally:
            if fd is not None:
                os.close(fd)


@contextmanager
def staged_landing(final: Path) -> Iterator[Path]:
    """A fresh folder that replaces `final` only if the block succeeds. A file-system error
    (disk full, file too large, not writable) becomes a LandingWriteError naming the path;
    folders abandoned by a killed extraction are swept first."""
    staging = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:8]}"
    fd = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned(final.parent, final.name)
        staging.mkdir()
        fd = os.open(staging / _IN_USE, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)
        raise (_landing_error(exc, final) or exc) from exc
    try:
        try:
            yield staging
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            wrapped = _landing_error(exc, final)
            if wrapped is not None:
                raise wrapped from exc
            raise
        (staging / _IN_USE).unlink()
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(fd)


def record_failure(final: Path, manifest: Manifest) -> None:
    """Note a failed extraction without destroying what an earlier run landed. When the
    landing cannot be written at all (disk full, not a folder) the note is skipped with a log
    line: the error being raised already says why."""
    try:
        _record_failure(final, manifest)
    except OSError as exc:
        try:
            (final / ".failed.json.tmp").unlink(missing_ok=True)
        except OSError:
            pass
        logging.getLogger(__name__).error("%s: could not record the failure in %s: %s", manifest.source_id, final, exc)


def _record_failure(final: Path, manifest: Manifest) -> None:
    final.mkdir(parents=True, exist_ok=True)
    failed = final / "failed.json"
    tmp = final / ".failed.json.tmp"
    tmp.write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, failed)


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Watermarks: per source, per period, the latest update moment the source reported for what is landed.
WATERMARKS = "_watermarks"


def watermark_path(var: Path, source_id: str) -> Path:
    return var / LANDING / WATERMARKS / f"{source_id}.json"


def read_watermark(var: Path, source_id: str, period: Period) -> dict | None:
    path = watermark_path(var, source_id)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # unreadable: a full extraction is always safe
    return doc.get("periods", {}).get(period.label)


def write_watermark(var: Path, source_id: str, period: Period, entry: dict) -> None:
    path = watermark_path(var, source_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        doc = {}
    doc.setdefault("source_id", source_id)
    doc.setdefault("periods", {})[period.label] = entry
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def merge_by_key(previous: Path, delta: Path, out: Path, key: str, schema: pa.Schema) -> dict:
    """Previous landing with every record of `delta` replacing the one with the same key,
    ordered by key; streamed through DuckDB so memory stays bounded."""
    import duckdb

    from tthc.sqlsafe import quote_identifier

    if key not in schema.names:
        raise ValueError(f"merge key {key!r} is not a landed column")
    con = duckdb.connect()
    try:
        con.execute("SET memory_limit = '512MB'")
        con.execute("SET preserve_insertion_order = true")
        # landed column names (wire fields, or the registry's canonical keys): checked and quoted
        names = ", ".join(quote_identifier(n, what="landed column") for n in schema.names)
        key_q = quote_identifier(key, what="merge key")
        reader = con.sql(
            f"""SELECT {names} FROM (
                    SELECT {names} FROM read_parquet($previous) p
                    WHERE NOT EXISTS (SELECT 1 FROM read_parquet($delta) d WHERE d.{key_q} = p.{key_q})
                    UNION ALL SELECT {names} FROM read_parquet($delta))
                ORDER BY {key_q} """,
            params={"previous": str(previous), "delta": str(delta)}).to_arrow_reader(10_000)
        landing = ParquetLanding(out, schema)
        for batch in reader:
            landing.write_batch(pa.RecordBatch.from_arrays(
                [batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema))
        return landing.close()
    finally:
        con.close()
