"""Identifiers that go into SQL text: checked to be plain identifiers, then quoted by the
dialect's own preparer (or ANSI double quotes when there is no dialect, as for DuckDB).
Values never go into SQL text: they are bind parameters."""
from __future__ import annotations

import re

PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class UnsafeIdentifier(ValueError):
    """A name that is not a plain SQL identifier was about to go into SQL text."""


def check_identifier(name: object, what: str = "identifier") -> str:
    if not isinstance(name, str) or not PLAIN_IDENTIFIER.fullmatch(name):
        raise UnsafeIdentifier(f"{what} {name!r} is not a plain SQL identifier (letters, digits, _; at most 63)")
    return name


def quote_identifier(name: str, dialect=None, what: str = "identifier", plain: bool = True) -> str:
    """`name` quoted for SQL text; with `plain` it must also be a plain identifier. `dialect`
    is a SQLAlchemy dialect (or anything with `.dialect`), else ANSI quoting is used."""
    if plain:
        check_identifier(name, what)
    elif not isinstance(name, str) or not name or "\x00" in name:
        raise UnsafeIdentifier(f"{what} {name!r} cannot be an SQL identifier")
    dialect = getattr(dialect, "dialect", dialect)
    if dialect is not None:
        return dialect.identifier_preparer.quote_identifier(name)
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: object) -> str:
    """A string literal for SQL that takes no bind parameters (ATTACH, COMMENT): only for text the
    project itself made (its own paths, its data dictionary), never for configuration or data."""
    return "'" + str(text).replace("'", "''") + "'"


def quote_qualified(name: str, dialect=None, what: str = "table") -> str:
    """`schema.table` (or `table`), each part a plain identifier, quoted."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if not 1 <= len(parts) <= 2:
        raise UnsafeIdentifier(f"{what} {name!r} is not a (schema.)table name")
    return ".".join(quote_identifier(p, dialect, what) for p in parts)
