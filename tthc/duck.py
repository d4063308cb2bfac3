"""In-process DuckDB connections of the transform and validation stages.

By default DuckDB takes 80 % of the machine's memory and every core. For runs far larger than
memory (the national benchmark) `TTHC_DUCKDB_MEMORY_LIMIT` (e.g. `1.5GB`), `TTHC_DUCKDB_THREADS`
and `TTHC_DUCKDB_TEMP_DIR` bound each connection; DuckDB then spills sorts, joins and
aggregations to the temporary folder instead of growing with the input.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 1 << 20  # pyarrow's default: a file written in one go has the same row groups


def config() -> dict[str, str | int]:
    """The DuckDB settings the TTHC_DUCKDB_* variables ask for (none when they are unset); the
    warehouse engine (warehouse.db) uses the same."""
    settings: dict[str, str | int] = {}
    if os.environ.get("TTHC_DUCKDB_MEMORY_LIMIT"):
        settings["memory_limit"] = os.environ["TTHC_DUCKDB_MEMORY_LIMIT"]
    if os.environ.get("TTHC_DUCKDB_THREADS"):
        settings["threads"] = int(os.environ["TTHC_DUCKDB_THREADS"])
    if os.environ.get("TTHC_DUCKDB_TEMP_DIR"):
        settings["temp_directory"] = os.environ["TTHC_DUCKDB_TEMP_DIR"]
    return settings


def connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config=config())


def _groups(pieces: Iterable[pa.Table | pa.RecordBatch], rows: int, schema: pa.Schema) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for piece in pieces:
        pending += piece.to_batches() if isinstance(piece, pa.Table) else [piece]
        count += piece.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = (rest.to_batches() if rest.num_rows else []), rest.num_rows
    if pending or count == 0:
        yield pa.Table.from_batches(pending) if pending else schema.empty_table()


def write_tables(pieces: Iterable[pa.Table | pa.RecordBatch], out, schema: pa.Schema, **options) -> int:
    """Rows arriving in pieces to Parquet, cast to `schema`, one row group at a time: memory holds
    two row groups, and the file is the one `pq.write_table(whole table)` would have written.
    A row group is encoded and compressed in a thread of its own (pyarrow lets go of the GIL)
    while the next is being produced."""
    rows = 0
    with pq.ParquetWriter(out, schema, **options) as writer, ThreadPoolExecutor(1) as background:
        writing: Future | None = None
        for table in _groups(pieces, ROW_GROUP_ROWS, schema):
            table = table.cast(schema)
            if writing is not None:
                writing.result()
            writing = background.submit(writer.write_table, table, row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
        if writing is not None:
            writing.result()
    return rows


def write_parquet(relation: duckdb.DuckDBPyRelation, out, schema: pa.Schema, **options) -> int:
    """A query's rows to Parquet, cast to `schema` (see `write_tables`)."""
    return write_tables(relation.to_arrow_reader(100_000), out, schema, **options)
