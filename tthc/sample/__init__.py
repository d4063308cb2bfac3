"""Sample sources that behave like a province's real ones (docs/sample-sources.md).

`serve` is loaded on first use: importing it here would make `python -m tthc.sample.server`
load its own module twice.
"""
from __future__ import annotations

from tthc.sample.generate import generate

__all__ = ["generate", "serve"]


def __getattr__(name: str):
    if name == "serve":
        from tthc.sample.server import serve

        return serve
    raise AttributeError(f"module 'tthc.sample' has no attribute {name!r}")
