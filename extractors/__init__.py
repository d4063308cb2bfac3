"""Extractors: one module per source kind, one contract (extractors.base)."""
