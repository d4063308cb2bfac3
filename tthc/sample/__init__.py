"""Sample sources that behave like a province's real ones (docs/sample-sources.md).

Exports load on first use: workbook writers start as fresh processes and the server's CLI
runs `tthc.sample.server` as a script, and neither should pay for the other's imports.
"""
from __future__ import annotations

import importlib

__all__ = ["generate", "serve"]
_EXPORTS = {"generate": "tthc.sample.generate", "serve": "tthc.sample.server"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tthc.sample' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    # importing the submodule `generate` binds the module to this name; the function wins
    globals()[name] = value
    return value
