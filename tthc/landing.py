"""The landing contract: where a source's landed file and manifest are, what a manifest says,
how landed Parquet is written, and what canonicalize is handed for each landed source.

Extractors write it, the national simulator writes it directly, canonicalize and validation
read it; they all spell a landed file's place with `landed_path` and nothing else.
Landed Parquet is cut into fixed-size row groups whatever the batch sizes were, so the same
records in the same order always give the same bytes and checksum.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from tthc.periods import Period
from tthc.sqlsafe import quote_identifier

MANIFEST = "manifest.json"
LANDING = "landing"
ROW_GROUP_ROWS = 50_000
# what a source's figures rest on: dossier records counted by the pipeline, or a unit's own report
RECORDS, SELF_REPORTED = "records", "self_reported"
BASES = (RECORDS, SELF_REPORTED)


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


def period_landing(var: Path, period: Period) -> Path:
    """`var/landing/<period>/`: every source's landing for a period."""
    return var / LANDING / period.label


def landing_dir(var: Path, period: Period, source_id: str) -> Path:
    """`var/landing/<period>/<source>/`: a source's landing for a period (manifest and files)."""
    return period_landing(var, period) / source_id


def landed_path(var: Path, period: Period, source_id: str, files: list[dict]) -> Path:
    """The landed file of a source for a period, from its manifest's `files` (one file per landing)."""
    return landing_dir(var, period, source_id) / files[0]["path"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


# ------------------------------------------------------------------ what canonicalize is handed

# the canonical columns whose value as landed is kept beside the canonical one, for the
# findings on values that cannot be read (transforms/canonicalize.py)
RAW_COLUMNS = ("channel", "status", "fee_amount", "received_at", "due_at", "finished_at", "returned_at", "updated_at")
CODED_COLUMNS = ("channel", "status")  # read through the registry's `mapping` codes


def landed_column(name: str) -> str:
    """A landed column in a canonical select: a plain identifier, quoted, of the landed table `r`."""
    return "r." + quote_identifier(name, what="landed column")


@dataclass(frozen=True)
class CanonicalSelect:
    """How a records source's landed columns become the canonical dossier columns
    (tthc.model.DOSSIER_SCHEMA). Every expression is DuckDB SQL over one landed row, the landed
    table aliased `r`, built only from fixed text and `landed_column` names: nothing from
    configuration or data goes into it but checked identifiers.

    - `values`: canonical column → expression of its value, for every dossier column except
      `source_id` (canonicalize adds it) and the coded ones (`channel`, `status`);
    - `raw`: each of RAW_COLUMNS → expression of the value as landed (text), shown in findings
      when the canonical value cannot be read; the coded columns are read from it through `codes`;
    - `codes`: `channel`, `status` → {landed code (None for a missing value): canonical code},
      the registry's `mapping` (an empty mapping: every landed code is unknown).
    """

    values: Mapping[str, str]
    raw: Mapping[str, str]
    codes: Mapping[str, Mapping]


@dataclass(frozen=True)
class LandedSource:
    """A source's latest successful landing for a period, as canonicalize needs it."""

    source_id: str
    basis: str  # RECORDS or SELF_REPORTED
    path: Path  # the landed file
    manifest: Manifest
    canonical: CanonicalSelect | None  # records sources only
    # the latest attempt failed and this is the previous good landing: the failure (failed.json's
    # `failure`, `extracted_at` as `failed_at`, `run_id`); None when the latest attempt landed
    stale: dict | None = None
