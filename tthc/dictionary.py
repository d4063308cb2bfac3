"""The data dictionary of what analysts read (warehouse/contracts/dictionary.yaml): the label
and meaning of every published column, the description of every table and view, and the codes'
meanings; read by the warehouse (comments, `publish.code_labels`), the published files and the docs."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import yaml

from tthc.checks import CHECKS
from tthc.form import FIGURE_LABELS, INDICATOR_NAMES

PATH = Path(__file__).resolve().parent.parent / "warehouse" / "contracts" / "dictionary.yaml"


@lru_cache(maxsize=1)
def dictionary() -> dict:
    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


def sha256() -> str:
    return hashlib.sha256(PATH.read_bytes()).hexdigest()


def column(name: str, relation: str | None = None) -> dict | None:
    """{label, description} of a column, the relation's own where it has one."""
    own = (dictionary()["relations"].get(relation or "", {}).get("columns") or {}).get(name)
    return own or dictionary()["columns"].get(name)


def column_comment(name: str, relation: str | None = None) -> str | None:
    entry = column(name, relation)
    return None if entry is None else f"{entry['label']}: {entry['description']}"


def relation_comment(relation: str) -> str | None:
    entry = dictionary()["relations"].get(relation)
    return None if entry is None else entry["description"]


def code_labels() -> list[tuple[str, str, str]]:
    """(kind, code, meaning) of every code the published tables use."""
    rows = [(kind, str(code), label) for kind, codes in dictionary()["codes"].items() for code, label in codes.items()]
    rows += [("check_id", check_id, check.title) for check_id, check in CHECKS.items()]
    rows += [("indicator", code, label) for code, label in INDICATOR_NAMES.items()]
    rows += [("figure", figure, label) for figure, label in FIGURE_LABELS.items()]
    return rows


def markdown() -> str:
    """docs/data-dictionary.md: every relation analysts read, its columns and the codes."""
    d = dictionary()
    lines = ["# Từ điển dữ liệu (data dictionary)", "",
             "Generated from `warehouse/contracts/dictionary.yaml` by `tthc.dictionary.markdown()`; the same text",
             "is the comment of every table, view and column of `publish` and `quality` on DuckDB and",
             "PostgreSQL, and the description of the published files' columns. Do not edit by hand.", "",
             "## Bảng và view", "", "| Bảng / view | Nội dung |", "|---|---|"]
    lines += [f"| `{name}` | {entry['description']} |" for name, entry in d["relations"].items()]
    lines += ["", "## Cột", "", "| Cột | Nhãn | Ý nghĩa |", "|---|---|---|"]
    lines += [f"| `{name}` | {entry['label']} | {entry['description']} |" for name, entry in d["columns"].items()]
    lines += ["", "## Mã (`publish.code_labels`)", "", "| Loại | Mã | Ý nghĩa |", "|---|---|---|"]
    lines += [f"| {kind} | `{code}` | {label} |" for kind, code, label in code_labels()]
    return "\n".join(lines) + "\n"
