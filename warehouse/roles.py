"""PostgreSQL roles: a loader that writes every layer and an analyst that reads only the
consumers' layers (`publish`, `quality`). Created idempotently by `tthc warehouse-roles`.

The loader owns the warehouse's schemas and tables: a load replaces a period's partition of
`core.fact_dossier` (DETACH, DROP, ATTACH) and migrations alter tables, which PostgreSQL allows
only to the owner. A login granted the loader works as it (warehouse/db.py sets the role on
connecting), so what one load creates the next one, under another login, may drop."""
from __future__ import annotations

import re

import sqlalchemy as sa

from tthc.sqlsafe import quote_identifier

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
WRITABLE = ("staging", "core", "quality", "publish")
READABLE = ("publish", "quality")


def _role(name: str) -> str:
    if not isinstance(name, str) or not _ROLE.fullmatch(name):
        raise ValueError(f"role name {name!r}: expected lower-case letters, digits and underscores")
    return f'"{name}"'


def setup_roles(engine: sa.Engine, loader: str = "tthc_loader", analyst: str = "tthc_analyst") -> None:
    if engine.dialect.name != "postgresql":
        raise ValueError(f"roles are for a PostgreSQL warehouse; this one is {engine.dialect.name}")
    loader_q, analyst_q = _role(loader), _role(analyst)
    with engine.begin() as conn:
        # as the admin who connected, not as the owner role the connection may have taken on
        conn.exec_driver_sql("SET LOCAL ROLE NONE")
        for name in (loader, analyst):
            exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
            if not exists:
                conn.exec_driver_sql(f"CREATE ROLE {_role(name)} NOLOGIN")
        database = conn.exec_driver_sql("SELECT current_database()").scalar()
        database_q = quote_identifier(database, conn.dialect, "database", plain=False)
        conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {database_q} TO {loader_q}, {analyst_q}")
        for schema in WRITABLE:
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            conn.exec_driver_sql(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {loader_q}")
            conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {loader_q}")
            conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
                                 f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {loader_q}")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.alembic_version TO {loader_q}")
        _give_ownership(conn, loader)
        for schema in READABLE:
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {analyst_q}")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {analyst_q}")
            conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {analyst_q}")
            # tables a migration creates later are the loader's: their default privileges are its own
            conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES FOR ROLE {loader_q} IN SCHEMA {schema} "
                                 f"GRANT SELECT ON TABLES TO {analyst_q}")
        for schema in ("staging", "core"):
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM {analyst_q}")


# every schema, table, partition, view and sequence of the warehouse (the migrations' version
# table too), with its owner changed server-side: names come from the catalog, quoted by format()
OWN_EVERYTHING = """
    DO $$
    DECLARE r record; s text;
    BEGIN
        FOREACH s IN ARRAY ARRAY['staging', 'core', 'quality', 'publish'] LOOP
            EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s, current_setting('tthc.owner'));
        END LOOP;
        FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE (n.nspname IN ('staging', 'core', 'quality', 'publish')
                        OR (n.nspname = 'public' AND c.relname = 'alembic_version'))
                   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                           CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                          WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                           r.nspname, r.relname, current_setting('tthc.owner'));
        END LOOP;
    END $$
"""


def _give_ownership(conn: sa.Connection, loader: str) -> None:
    """The loader becomes the owner of the warehouse's schemas and tables (sequences follow their
    tables). Run by the admin who created them; again after a migration an admin ran."""
    conn.execute(sa.text("SELECT set_config('tthc.owner', :r, true)"), {"r": loader})
    conn.execute(sa.text(OWN_EVERYTHING))
