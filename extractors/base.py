"""The extractor contract: stream records in bounded batches into the landing area for one
source and period, and leave a manifest saying what was landed.

A landing folder is replaced as a whole: a new extraction is written beside the old one and
swapped in with renames, so a failed or killed extraction leaves the previous one intact.
"""
from __future__ import annotations

import hashlib
import json
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


def landing_dir(var: Path, period: Period, source_id: str) -> Path:
    return var / "landing" / period.label / source_id


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ParquetLanding:
    """Writes record batches to one Parquet file as they arrive (flat memory)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, columns: dict[str, list]) -> None:
        batch = pa.RecordBatch.from_pydict(columns, schema=self.schema)
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    def close(self) -> dict:
        self._writer.close()
        return {"path": self.path.name, "rows": self.rows, "sha256": sha256_file(self.path)}


@contextmanager
def staged_landing(final: Path) -> Iterator[Path]:
    """A fresh folder that replaces `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def record_failure(final: Path, manifest: Manifest) -> None:
    """Note a failed extraction without destroying what an earlier run landed."""
    final.mkdir(parents=True, exist_ok=True)
    failed = final / "failed.json"
    tmp = final / ".failed.json.tmp"
    tmp.write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, failed)


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
