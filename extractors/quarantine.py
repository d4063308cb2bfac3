"""Quarantine for records a source sent that cannot be landed (API records, database rows).

Files refused whole are copied by the spreadsheet extractor; records are written here as JSON
lines, one per record with its place (page and index, or row) and the reason, and only with
the fields the extractor may keep (never personal data). A `.reason.txt` beside says why.
"""
from __future__ import annotations

import json
import os
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
