"""The data dictionary (tthc.dictionary) as comments on every table, view and column the
analysts read (`publish`, `quality`), and the codes' meanings in `publish.code_labels`; applied
after migrating, when the dictionary or the schema changed (the dictionary's hash is kept as the
end of the comment of `publish.code_labels`: DuckDB cannot comment a schema)."""
from __future__ import annotations

import sqlalchemy as sa

from tthc import dictionary
from tthc.sqlsafe import quote_identifier, quote_literal

SCHEMAS = ("publish", "quality")
MARK = " (từ điển dữ liệu sha256 "


def _comment(conn: sa.Connection, statement: str) -> None:
    # psycopg reads % as a placeholder even without parameters
    conn.exec_driver_sql(statement.replace("%", "%%") if conn.dialect.name == "postgresql" else statement)


def relations(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(schema, name, 'TABLE' | 'VIEW') of the analysts' relations."""
    rows = conn.execute(sa.text(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables "
        "WHERE table_schema IN ('publish', 'quality') ORDER BY 1, 2")).all()
    return [(schema, name, "VIEW" if kind == "VIEW" else "TABLE") for schema, name, kind in rows]


def columns(conn: sa.Connection, schema: str, name: str) -> list[str]:
    """A table's or view's columns in order (information_schema: duckdb-engine's inspector cannot list them)."""
    return list(conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
        "ORDER BY ordinal_position"), {"s": schema, "t": name}).scalars())


def apply_dictionary(conn: sa.Connection, revision: str | None, *, force: bool = False) -> bool:
    """Comments and code labels, unless the warehouse already has this dictionary at this
    revision. Returns whether it wrote them."""
    mark = f"{MARK}{dictionary.sha256()}, phiên bản kho {revision})"
    if not force and (_code_labels_comment(conn) or "").endswith(mark):
        return False
    for schema, name, kind in relations(conn):
        relation = f"{schema}.{name}"
        target = f"{schema}.{quote_identifier(name, what='published relation')}"
        comment = dictionary.relation_comment(relation)
        if comment:
            _comment(conn, f"COMMENT ON {kind} {target} IS {quote_literal(comment)}")
        for column in columns(conn, schema, name):
            text = dictionary.column_comment(column, relation)
            if text:
                quoted = quote_identifier(column, what="published column")
                _comment(conn, f"COMMENT ON COLUMN {target}.{quoted} IS {quote_literal(text)}")
    conn.execute(sa.text("DELETE FROM publish.code_labels"))
    conn.execute(sa.text("INSERT INTO publish.code_labels (kind, code, code_label) VALUES (:k, :c, :l)"),
                 [{"k": k, "c": c, "l": label} for k, c, label in dictionary.code_labels()])
    described = (dictionary.relation_comment("publish.code_labels") or "") + mark
    _comment(conn, f"COMMENT ON TABLE publish.code_labels IS {quote_literal(described)}")
    return True


def _code_labels_comment(conn: sa.Connection) -> str | None:
    if conn.dialect.name == "postgresql":
        return conn.execute(sa.text("SELECT obj_description('publish.code_labels'::regclass, 'pg_class')")).scalar()
    return conn.execute(sa.text(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = 'publish' AND table_name = 'code_labels' "
        "AND database_name = current_database()")).scalar()
