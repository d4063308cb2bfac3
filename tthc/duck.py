"""In-process DuckDB connections of the transform and validation stages.

By default DuckDB takes 80 % of the machine's memory and every core. For runs far larger than
memory (the national benchmark) `TTHC_DUCKDB_MEMORY_LIMIT` (e.g. `1.5GB`), `TTHC_DUCKDB_THREADS`
and `TTHC_DUCKDB_TEMP_DIR` bound each connection; DuckDB then spills sorts, joins and
aggregations to the temporary folder instead of growing with the input.
"""
from __future__ import annotations

import os
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 1 << 20  # pyarrow's default: a file written in one go has the same row groups


def connect() -> duckdb.DuckDBPyConnection:
    config: dict[str, str | int] = {}
    if os.environ.get("TTHC_DUCKDB_MEMORY_LIMIT"):
        config["memory_limit"] = os.environ["TTHC_DUCKDB_MEMORY_LIMIT"]
    if os.environ.get("TTHC_DUCKDB_THREADS"):
        config["threads"] = int(os.environ["TTHC_DUCKDB_THREADS"])
    if os.environ.get("TTHC_DUCKDB_TEMP_DIR"):
        config["temp_directory"] = os.environ["TTHC_DUCKDB_TEMP_DIR"]
    return duckdb.connect(config=config)


def _groups(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = (rest.to_batches() if rest.num_rows else []), rest.num_rows
    if pending or count == 0:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def write_parquet(relation: duckdb.DuckDBPyRelation, out, schema: pa.Schema, **options) -> int:
    """A query's rows to Parquet, cast to `schema`, one row group at a time: memory holds one
    row group, and the file is the one `pq.write_table(whole table)` would have written."""
    reader = relation.to_arrow_reader(100_000)
    rows = 0
    with pq.ParquetWriter(out, schema, **options) as writer:
        for table in _groups(reader, ROW_GROUP_ROWS):
            writer.write_table(table.cast(schema), row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
    return rows
