"""Credentials for sources, looked up like Airflow does: an `AIRFLOW_CONN_<ID>` environment
variable first (URI or JSON), then Airflow's own connections when running inside a task.
Never from config files, never logged."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit


class MissingConnection(LookupError):
    pass


_SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]*@", re.IGNORECASE)


def redact_url(url: str, keep_user: bool = True) -> str:
    """The URL without its password (`user:***@host`), or without its user info at all."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if keep_user and parts.username:
        netloc = f"{parts.username}{':***' if parts.password is not None else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class ConnectionInfo:
    conn_id: str
    conn_type: str
    host: str = ""
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # credentials pasted into the host field (http://user:secret@host) are taken out of it,
        # so that the URL the pipeline shows in errors and logs never carries them
        if "://" in self.host:
            parts = urlsplit(self.host)
            if parts.username is not None or parts.password is not None:
                if self.login is None and parts.username:
                    object.__setattr__(self, "login", unquote(parts.username))
                if self.password is None and parts.password is not None:
                    object.__setattr__(self, "password", unquote(parts.password))
                object.__setattr__(self, "host", redact_url(self.host, keep_user=False))

    def secrets(self) -> list[str]:
        """The values that must never be shown: the password and any extra that looks like one,
        each also as it is written in a URL."""
        values = [self.password] + [str(v) for k, v in self.extra.items() if _SECRET_KEY.search(str(k))]
        forms = {form for v in values if v for form in (v, quote(v, safe=""), quote_plus(v))}
        return sorted(forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with this connection's secrets and any URL credentials replaced by ***."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return _URL_CREDENTIALS.sub(r"\1***@", text)

    @property
    def base_url(self) -> str:
        host = self.host
        if "://" in host:
            return host.rstrip("/")
        scheme = self.schema or ("https" if self.conn_type == "https" else "http")
        return f"{scheme}://{host}" + (f":{self.port}" if self.port else "")


def get_connection(conn_id: str) -> ConnectionInfo:
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    raw = os.environ.get(env_name)
    if raw:
        try:
            return _parse(conn_id, raw)
        except (ValueError, TypeError) as exc:
            raise MissingConnection(f"{env_name} is set but is neither a connection URI nor JSON: {exc}") from None
    conn = _from_airflow(conn_id)
    if conn is None:
        raise MissingConnection(
            f"no connection {conn_id!r}: define it in Airflow or set {env_name} (URI or JSON)"
        )
    return conn


def _parse(conn_id: str, raw: str) -> ConnectionInfo:
    raw = raw.strip()
    if raw.startswith("{"):
        doc = json.loads(raw)
        extra = doc.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return ConnectionInfo(
            conn_id, doc.get("conn_type", ""), doc.get("host") or "", doc.get("port"),
            doc.get("login"), doc.get("password"), doc.get("schema") or "", extra,
        )
    parts = urlsplit(raw)
    if not parts.scheme:
        raise ValueError("no scheme")
    extra = dict(parse_qsl(parts.query))
    return ConnectionInfo(
        conn_id, parts.scheme.replace("-", "_"), unquote(parts.hostname or ""), parts.port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        unquote(parts.path[1:]) if parts.path else "", extra,
    )


def _from_airflow(conn_id: str) -> ConnectionInfo | None:
    try:
        from airflow.sdk import Connection
    except ImportError:
        return None
    try:
        conn = Connection.get(conn_id)
    except Exception:  # noqa: BLE001 - Airflow raises its own not-found types outside tasks
        return None
    return ConnectionInfo(
        conn_id, conn.conn_type or "", conn.host or "", conn.port, conn.login, conn.password,
        conn.schema or "", conn.extra_dejson or {},
    )
