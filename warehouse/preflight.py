"""Before a run extracts anything: can this warehouse take its load and its publication?

A warehouse that cannot be reached, a file that is not a DuckDB database, a role that cannot
migrate, or one that lacks a privilege the load or the publication needs would otherwise be found
after the extraction (minutes), or worse between the load and the publication, leaving `core`
ahead of the published vintage. Each is a `WarehouseUnavailable` naming the warehouse (password
never shown) and what to do; nothing is written but the migrations the load would apply anyway.
"""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tthc.connections import redact_url
from warehouse.db import (WarehouseBusy, WarehouseUnavailable, connection_lost, engine_for, first_line,
                          lacks_privilege, migrate, normalise_url, with_password)
from warehouse.load import PARTITIONED_ON_POSTGRES, PERIOD_TABLES

# what a load (warehouse/load.py) and a publication (warehouse/publish.py) do to each table
REFERENCE_TABLES = ("core.dim_unit", "core.unit_conversion", "core.dim_field")
FROZEN_TABLES = ("core.published_bieu06_by_unit", "core.published_rollup", "core.published_indicators")


def required_privileges() -> dict[str, tuple[str, ...]]:
    need: dict[str, tuple[str, ...]] = {}
    for target, staged in PERIOD_TABLES.items():
        need[target] = ("SELECT", "INSERT", "DELETE")
        need[staged] = ("SELECT", "INSERT", "DELETE")
    for table in REFERENCE_TABLES:
        need[table] = ("SELECT", "INSERT", "DELETE")
    for table in FROZEN_TABLES:
        need[table] = ("SELECT", "INSERT")
    need.update({
        "core.runs": ("INSERT",),
        "core.period_locks": ("SELECT", "INSERT", "UPDATE"),  # the period's lock: a row locked FOR UPDATE
        "publish.vintages": ("SELECT", "INSERT"),
        "publish.bieu06_by_province_v1": ("SELECT",),  # the report's trend
        "public.alembic_version": ("SELECT",),
    })
    return need


# tables the PostgreSQL load alters (the dossiers' partitioned table and its partitions): owner only
NOT_OWNED = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'core' AND (c.oid = CAST(:parent AS regclass)
          OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = CAST(:parent AS regclass)))
      AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
    ORDER BY 1
"""


def missing_privileges(conn: sa.Connection) -> list[str]:
    """What the connection's role lacks for a load and a publication, e.g. `INSERT on publish.vintages`."""
    missing = []
    for schema, privilege in [*((s, "USAGE") for s in ("staging", "core", "quality", "publish")),
                              ("staging", "CREATE"), ("core", "CREATE")]:
        if not conn.execute(sa.text("SELECT has_schema_privilege(:s, :p)"), {"s": schema, "p": privilege}).scalar():
            missing.append(f"{privilege} on schema {schema}")
    if missing:  # without the schemas the tables' checks cannot be asked
        return missing
    for table, privileges in required_privileges().items():
        for privilege in privileges:
            if not conn.execute(sa.text("SELECT has_table_privilege(:t, :p)"), {"t": table, "p": privilege}).scalar():
                missing.append(f"{privilege} on {table}")
    for table in conn.execute(sa.text(NOT_OWNED), {"parent": PARTITIONED_ON_POSTGRES}).scalars():
        missing.append(f"ownership of {table} (its period partitions are swapped)")
    return missing


def where(url: str) -> str:
    """The warehouse as an operator knows it: host:port/database and the URL without its password,
    or the DuckDB file."""
    plain = normalise_url(url)
    if plain.startswith("duckdb:///"):
        return plain.removeprefix("duckdb:///")
    parsed = sa.make_url(plain)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''} ({redact_url(url)})"


def _without_secret(url: str, text: str) -> str:
    password = sa.make_url(with_password(normalise_url(url))).password
    return text.replace(password, "***") if password else text


def unusable(url: str, exc: BaseException, doing: str, connected: bool = False) -> WarehouseUnavailable:
    """The operator's message for a warehouse error met while `doing` (e.g. "the load of 2025-Q2");
    `connected`: the run had been using the warehouse, so a connection error is a lost connection."""
    cause = _without_secret(url, first_line(exc))
    if normalise_url(url).startswith("duckdb:"):
        path = where(url)
        return WarehouseUnavailable(
            f"the warehouse file {path} cannot be opened as a DuckDB database ({cause}) during {doing}. It was "
            f"not changed. Move it aside (keep it for diagnosis), then restore the last backup to {path}, or "
            "let the next run start a new warehouse there and rerun the quarters to fill it.")
    if lacks_privilege(exc):
        return WarehouseUnavailable(
            f"the warehouse {where(url)} refused {doing}: {cause}. The login needs the loader role: run "
            "`tthc warehouse-roles --warehouse …` as the warehouse's owner and grant tthc_loader to the login "
            "(README, \"The warehouse\").")
    if connection_lost(exc) and connected:
        return WarehouseUnavailable(f"the connection to the warehouse {where(url)} was lost during {doing}: {cause}.")
    if connection_lost(exc):
        return WarehouseUnavailable(
            f"the warehouse {where(url)} cannot be reached or refused the login during {doing}: {cause}. Check that "
            "the server runs and accepts this login (TTHC_WAREHOUSE_URL or --warehouse; the password in "
            "TTHC_WAREHOUSE_PASSWORD or TTHC_WAREHOUSE_PASSWORD_FILE).")
    return WarehouseUnavailable(f"the warehouse {where(url)} failed during {doing}: {cause}")


def check_warehouse(url: str) -> None:
    """Connect, apply the migrations (every load does), and on PostgreSQL check every privilege the
    load and the publication need; raise `WarehouseUnavailable` saying what is wrong. A DuckDB
    file that does not exist yet is fine: the first load makes it."""
    import duckdb

    plain = normalise_url(url)
    if plain.startswith("duckdb:///"):
        path = plain.removeprefix("duckdb:///")
        if path in ("", ":memory:") or not Path(path).exists():
            return
    doing = "the check before extraction"
    try:
        with engine_for(url) as engine:
            migrate(engine)
            if engine.dialect.name != "postgresql":
                return
            with engine.connect() as conn:
                missing = missing_privileges(conn)
                role, login = conn.execute(sa.text("SELECT current_user, session_user")).one()
    except (WarehouseBusy, WarehouseUnavailable):
        raise
    except (sa.exc.SQLAlchemyError, duckdb.Error, OSError) as exc:
        raise unusable(url, exc, doing) from None
    if missing:
        acting = role if role == login else f"{role} (login {login})"
        raise WarehouseUnavailable(
            f"the warehouse {where(url)}: role {acting} lacks " + ", ".join(missing)
            + ". A run would extract, then fail to load, or load and not publish. Run `tthc warehouse-roles "
              "--warehouse …` as the warehouse's owner and grant tthc_loader to the login (README, \"The "
              "warehouse\"); nothing was extracted, loaded or published.")
