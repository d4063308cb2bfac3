"""The extractor contract: stream records in bounded batches into the landing area for one
source and period, leave a manifest saying what was landed, and keep a watermark.

A landing folder is replaced as a whole: a new extraction is written beside the old one and
swapped in with renames, so a failed or killed extraction leaves the previous one intact.
Landed Parquet is cut into fixed-size row groups whatever the batch sizes were, so the same
records in the same order always give the same bytes and checksum.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from tthc.periods import Period

MANIFEST = "manifest.json"


class SourceUnavailable(RuntimeError):
    """The source could not be reached or answered wrongly after retries."""


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
    """A problem with one input (file, sheet, row, column) that did not stop the source."""

    message: str
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    unit_code: str | None = None
    quarantined: str | None = None

    def where(self) -> str:
        parts = [self.file, f"sheet {self.sheet!r}" if self.sheet else None,
                 f"row {self.row}" if self.row else None, f"column {self.column}" if self.column else None]
        return ", ".join(p for p in parts if p)


@dataclass
class Manifest:
    source_id: str
    kind: str
    period: dict
    status: str  # ok | failed
    extracted_at: str
    run_id: str
    files: list[dict] = field(default_factory=list)
    rows: int = 0
    errors: list[dict] = field(default_factory=list)
    failure: str | None = None
    stats: dict = field(default_factory=dict)
    # problems worth a look that do not make a value unknown (a typed total that disagrees with its formula…)
    warnings: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST
        tmp = folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path


def inside(root: Path, name: str) -> Path:
    """`root / name` for a name that came from a source (a file name, a quarantine name): it
    must be a plain name that stays in `root`, never a path that writes elsewhere."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or os.sep in name:
        raise ValueError(f"{name!r} is not a plain file name: nothing is written for it outside {root}")
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{name!r} resolves outside {root}: nothing is written for it")
    return path


def landing_dir(var: Path, period: Period, source_id: str) -> Path:
    return var / "landing" / period.label / source_id


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


ROW_GROUP_ROWS = 50_000


class ParquetLanding:
    """Writes record batches to one Parquet file as they arrive, holding at most one row
    group in memory."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS):
        self.path = path
        self.schema = schema
        self.rows = 0
        self._row_group_rows = row_group_rows
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, columns: dict[str, list]) -> None:
        self.write_batch(pa.RecordBatch.from_pydict(columns, schema=self.schema))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self._row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        whole = (table.num_rows // self._row_group_rows) * self._row_group_rows
        cut = table.num_rows if final else whole
        for start in range(0, cut, self._row_group_rows):
            self._writer.write_table(table.slice(start, min(self._row_group_rows, cut - start)),
                                     row_group_size=self._row_group_rows)
        rest = table.slice(cut)
        self._pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> dict:
        if self._pending_rows:
            self._flush(final=True)
        self._writer.close()
        return {"path": self.path.name, "rows": self.rows, "sha256": sha256_file(self.path)}

    def abort(self) -> None:
        self._pending, self._pending_rows = [], 0
        self._writer.close()


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
    return var / "landing" / WATERMARKS / f"{source_id}.json"


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
