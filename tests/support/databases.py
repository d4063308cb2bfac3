"""Throwaway databases on the machine's own servers, one per test, dropped afterwards."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa

from tests.conftest import require_service

SERVERS = {
    # kind: (admin URL, database URL prefix, CREATE suffix, DROP suffix, port, how to start it)
    "postgresql": ("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "postgresql+psycopg://postgres@127.0.0.1:5432/",
                   "", " WITH (FORCE)", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql+pymysql://root@127.0.0.1:3306/",
                " CHARACTER SET utf8mb4", "", 3306, "service mariadb start"),
}


@contextmanager
def throwaway_database(kind: str, prefix: str = "tthc_test") -> Iterator[str]:
    """A fresh database on 127.0.0.1 (`postgresql` or `mariadb`); yields its SQLAlchemy URL. Under
    CI=true a server that is not running fails the test, elsewhere it skips it."""
    admin_url, base, create, drop, port, start = SERVERS[kind]
    require_service("PostgreSQL" if kind == "postgresql" else "MariaDB", port, start)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"  # made here from hex digits: safe to name in DDL
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}{create}")
        try:
            yield base + name + ("?charset=utf8mb4" if kind == "mariadb" else "")
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{drop}")
    finally:
        admin.dispose()


def load_runs(url: str) -> list[str]:
    """The run ids of the warehouse's loads, oldest first (core.runs)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT run_id FROM core.runs WHERE stage = 'load' ORDER BY finished_at")
                                ).scalars().all()
    finally:
        engine.dispose()
