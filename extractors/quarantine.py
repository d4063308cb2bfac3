"""Quarantine for what a source sent that cannot be landed: records (API records, database
rows) and files refused whole (workbooks).

Records are written as JSON lines, one per record with its place (page and index, or row) and
the reason, and only with the fields the extractor may keep (never personal data); a refused
file is copied as it is. A `.reason.txt` beside says why. The tail that turns rejected records
into manifest errors naming their quarantine file is `extractors.base.finish`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from extractors.base import inside


def quarantine_rejected(quarantine_dir: Path, name: str, records: list[dict]) -> Path:
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    path = inside(quarantine_dir, name)
    tmp = inside(quarantine_dir, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, default=str, sort_keys=True) + "\n")
    os.replace(tmp, path)
    reasons = sorted({r["reason"] for r in records})
    inside(quarantine_dir, f"{name}.reason.txt").write_text(
        f"{len(records)} records not landed:\n" + "\n".join(f"- {r}" for r in reasons) + "\n", encoding="utf-8")
    return path


def quarantine_file(path: Path, quarantine_dir: Path, reason: str) -> str:
    """A copy of a file refused whole, with its reason beside it; returns the copy's path."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = inside(quarantine_dir, path.name)
    shutil.copy2(path, target)
    inside(quarantine_dir, f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return str(target)
