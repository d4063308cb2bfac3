"""What the intake keeps: the units' links (only their hashes) and every submission, in one
SQLite file under the working folder; the submitted workbook itself goes to the period's
folder of the spreadsheet source, under the name the extractor reads.

A submission is written atomically: the workbook is written beside its final name, the
submission's row inserted, then the file renamed into place and the row committed; a failure
at any point leaves the previous workbook and the previous row. A correction keeps the
replaced submission's row (with the reason) and moves its file aside under the store's folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('unit', 'province')),
    unit_code TEXT NOT NULL,
    period TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    unit_code TEXT NOT NULL,
    period TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    criticals INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    explanation TEXT,
    correction_reason TEXT,
    replaced_by INTEGER REFERENCES submissions (id),
    kept_file TEXT
);
CREATE INDEX IF NOT EXISTS submissions_current ON submissions (period, unit_code, replaced_by);
"""


class UnknownLink(LookupError):
    """A token that no link has, or whose link was revoked."""


@dataclass(frozen=True)
class Link:
    id: int
    role: str
    unit_code: str
    period: str | None

    @property
    def who(self) -> str:
        """Who submitted, as recorded: the link, not a person (no personal data is kept)."""
        return f"link {self.id}"


@dataclass(frozen=True)
class Submission:
    id: int
    unit_code: str
    period: str
    file: str
    sha256: str
    submitted_by: str
    submitted_at: datetime
    criticals: int
    warnings: int
    explanation: str | None
    correction_reason: str | None
    replaces: int | None = None


def token_hash(token: str) -> str:
    """Tokens are 32 random bytes, so one SHA-256 is enough to store them unreadably."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


class Store:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "intake.sqlite"
        with closing(self._connect()) as con, con:
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level="DEFERRED")
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys = ON")
        return con

    # ------------------------------------------------------------ links

    def issue(self, role: str, unit_code: str, period: str | None) -> tuple[Link, str]:
        """A new link and its token; the token is shown once and never stored."""
        token = secrets.token_urlsafe(32)
        with closing(self._connect()) as con, con:
            cur = con.execute("INSERT INTO links (token_sha256, role, unit_code, period, created_at) VALUES (?, ?, ?, ?, ?)",
                              (token_hash(token), role, unit_code, period, now().isoformat()))
            return Link(cur.lastrowid, role, unit_code, period), token

    def link(self, token: str) -> Link:
        with closing(self._connect()) as con:
            row = con.execute("SELECT id, role, unit_code, period FROM links WHERE token_sha256 = ? AND revoked_at IS NULL",
                              (token_hash(token),)).fetchone()
        if row is None:
            raise UnknownLink("no such link, or it was revoked")
        return Link(row["id"], row["role"], row["unit_code"], row["period"])

    def revoke(self, link_id: int) -> bool:
        with closing(self._connect()) as con, con:
            return con.execute("UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (now().isoformat(), link_id)).rowcount == 1

    def links(self, period: str | None = None) -> list[dict]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT id, role, unit_code, period, created_at, revoked_at FROM links "
                               "WHERE ? IS NULL OR period = ? ORDER BY id", (period, period)).fetchall()
        return [dict(r) for r in rows]

    # ------------------------------------------------------------ submissions

    def current(self, period: str, unit_code: str | None = None) -> list[Submission]:
        """The submission in force of each unit (of one unit) for the period."""
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT s.*, (SELECT p.id FROM submissions p WHERE p.replaced_by = s.id) AS replaces FROM submissions s "
                "WHERE s.period = ? AND s.replaced_by IS NULL AND (? IS NULL OR s.unit_code = ?) ORDER BY s.unit_code",
                (period, unit_code, unit_code)).fetchall()
        return [_submission(r) for r in rows]

    def history(self, period: str, unit_code: str) -> list[Submission]:
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT s.*, (SELECT p.id FROM submissions p WHERE p.replaced_by = s.id) AS replaces FROM submissions s "
                "WHERE s.period = ? AND s.unit_code = ? ORDER BY s.id", (period, unit_code)).fetchall()
        return [_submission(r) for r in rows]

    def submit(self, *, inbox: Path, name: str, data: bytes, link: Link, period: str, criticals: int, warnings: int,
               explanation: str | None, correction_reason: str | None, others: list[Path],
               note_path: Path | None = None) -> Submission:
        """Land `data` as `inbox/name` and record it; the unit's earlier submission (and any
        other file of the unit in the inbox, `others`) is replaced, its file kept aside. The
        record is also written beside the workbook at `note_path` (JSON), for the extractor."""
        inbox.mkdir(parents=True, exist_ok=True)
        final = inbox / name
        staged = inbox / f".{name}.{secrets.token_hex(4)}.part"  # the extractor skips dot files
        digest = hashlib.sha256(data).hexdigest()
        kept = self.folder / "replaced" / period / link.unit_code
        with open(staged, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        earlier_note = note_path.read_bytes() if note_path is not None and note_path.exists() else None
        try:
            with closing(self._connect()) as con, con:
                con.execute("BEGIN IMMEDIATE")
                previous = con.execute("SELECT id FROM submissions WHERE period = ? AND unit_code = ? AND replaced_by IS NULL",
                                       (period, link.unit_code)).fetchone()
                stamp = now()
                cur = con.execute(
                    "INSERT INTO submissions (unit_code, period, file, sha256, submitted_by, submitted_at, criticals, "
                    "warnings, explanation, correction_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (link.unit_code, period, name, digest, link.who, stamp.isoformat(), criticals, warnings,
                     explanation, correction_reason))
                new_id = cur.lastrowid
                moved = []
                for other in [final, *others]:
                    if other.exists():
                        kept.mkdir(parents=True, exist_ok=True)
                        aside = kept / f"{stamp:%Y%m%dT%H%M%S}_{new_id}_{other.name}"
                        moved.append((other, aside))
                if previous is not None:
                    con.execute("UPDATE submissions SET replaced_by = ?, kept_file = ? WHERE id = ?",
                                (new_id, str(moved[0][1]) if moved else None, previous["id"]))
                record = {"submission_id": new_id, "unit_code": link.unit_code, "period": period, "file": name,
                          "sha256": digest, "submitted_by": link.who, "submitted_at": stamp.isoformat(),
                          "criticals": criticals, "warnings": warnings, "explanation": explanation,
                          "correction_reason": correction_reason,
                          "replaces": previous["id"] if previous is not None else None}
                if note_path is not None:
                    staged_note = note_path.with_name(note_path.name + ".part")
                    staged_note.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
                    os.replace(staged_note, note_path)
                for source, aside in moved:
                    if source == final:  # the new workbook takes its name in the rename below
                        _copy(source, aside)
                    else:
                        os.replace(source, aside)
                os.replace(staged, final)
        except BaseException:
            if note_path is not None:  # the record beside the workbook is the one in force again
                if earlier_note is not None:
                    note_path.write_bytes(earlier_note)
                else:
                    note_path.unlink(missing_ok=True)
            raise
        finally:
            if staged.exists():
                staged.unlink()
        return Submission(new_id, link.unit_code, period, name, digest, link.who, stamp, criticals, warnings,
                          explanation, correction_reason, previous["id"] if previous is not None else None)


def _copy(source: Path, target: Path) -> None:
    """The replaced workbook kept aside; the new one then takes its name in one rename."""
    target.write_bytes(source.read_bytes())


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(row["id"], row["unit_code"], row["period"], row["file"], row["sha256"], row["submitted_by"],
                      datetime.fromisoformat(row["submitted_at"]), row["criticals"], row["warnings"],
                      row["explanation"], row["correction_reason"], row["replaces"])
