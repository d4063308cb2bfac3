"""The analysts' copy of an embedded warehouse: what the PostgreSQL analyst role may read
(`publish` and `quality`), materialised into a file of its own after every publication and
renamed into place, so that an analyst's session never holds the file the pipeline writes.

DuckDB allows one writing process per file, and a reader's lock stops the writer: an analyst
who opened `var/warehouse.duckdb` would make the next load wait. The copy is written in an older
storage format (`STORAGE_VERSION`) that the DuckDB command-line client installable from PyPI
(`duckdb-cli`, 1.4 and later) and the DuckDB drivers of SQL clients open; the pipeline's own
DuckDB is newer. A session open on the previous copy keeps reading it (the rename does not
touch an open file) until it reconnects."""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import duckdb

from tthc.sqlsafe import quote_identifier, quote_literal

log = logging.getLogger(__name__)

SCHEMAS = ("publish", "quality")
# the oldest storage format that keeps every type the published tables use
STORAGE_VERSION = "v1.4.0"
# DuckDB sums 64-bit integers into 128-bit ones, which spreadsheets and pandas read as decimals
NARROWED = {"HUGEINT": "BIGINT", "UHUGEINT": "BIGINT"}


def analyst_copy_path(var: Path) -> Path:
    return Path(var) / "analyst" / "warehouse.duckdb"


def refresh_analyst_copy(warehouse: Path, copy: Path) -> Path:
    """Write `copy` from `warehouse` (closed by every writer): each table and view of the analyst's
    schemas as a table, with its comments, then rename it into place. Returns the copy's path."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    staging = copy.with_name(f".{copy.name}.{uuid.uuid4().hex[:8]}")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {quote_literal(warehouse)} AS source (READ_ONLY)")
        con.execute(f"ATTACH {quote_literal(staging)} AS analyst (STORAGE_VERSION '{STORAGE_VERSION}')")
        relations = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = 'source' "
            "AND schema_name IN ('publish', 'quality') UNION ALL "
            "SELECT schema_name, view_name, comment FROM duckdb_views() WHERE database_name = 'source' "
            "AND schema_name IN ('publish', 'quality') AND NOT internal ORDER BY 1, 2").fetchall()
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA analyst.{schema}")
        for schema, name, comment in relations:
            columns = con.execute(
                "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE database_name = 'source' "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, name]).fetchall()
            select = ", ".join(
                f"CAST({_id(c)} AS {NARROWED[t]}) AS {_id(c)}" if t in NARROWED else _id(c) for c, t, _ in columns)
            target = f"analyst.{schema}.{_id(name)}"
            con.execute(f"CREATE TABLE {target} AS SELECT {select} FROM source.{schema}.{_id(name)}")
            if comment:
                con.execute(f"COMMENT ON TABLE {target} IS {quote_literal(comment)}")
            for column, _, column_comment in columns:
                if column_comment:
                    con.execute(f"COMMENT ON COLUMN {target}.{_id(column)} IS {quote_literal(column_comment)}")
        con.execute("DETACH analyst")
    except BaseException:
        con.close()
        staging.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(staging, copy)
    log.info("analysts' copy of %s refreshed: %s (%d tables)", warehouse, copy, len(relations))
    return copy


def _id(name: str) -> str:
    return quote_identifier(name, what="published column")
