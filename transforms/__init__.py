"""Transforms: canonical model, derived figures, reconciliation."""
