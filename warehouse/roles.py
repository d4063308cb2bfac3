"""PostgreSQL roles: a loader that writes every layer and an analyst that reads only the
consumers' layers (`publish`, `quality`). Created idempotently by `tthc warehouse-roles`."""
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
        for schema in READABLE:
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {analyst_q}")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {analyst_q}")
            conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {analyst_q}")
        for schema in ("staging", "core"):
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM {analyst_q}")
