"""The files the stages of one run hand each other, named once: a stage reads and writes
attributes of `RunFiles`, never file names of its own, so that what flows between stages can
be read off this class (docs/canonical-model.md says what each holds)."""
from __future__ import annotations

from pathlib import Path


def _file(name: str) -> property:
    return property(lambda self: self.folder / name, doc=f"`{name}` in the run's folder")


class RunFiles:
    """`folder` is var/runs/<period>/<run id>/."""

    def __init__(self, folder: Path):
        self.folder = folder

    # canonicalize
    dossiers = _file("dossiers.parquet")  # canonical dossier records, one per source and dossier
    ids_under_several_units = _file("ids_under_several_units.parquet")  # (source_id, dossier_id) listed under 2+ units
    self_reported = _file("self_reported.parquet")  # Biểu 06 rows typed by the units, one per unit and field
    self_reported_totals = _file("self_reported_totals.parquet")  # the workbooks' "Tổng cộng" rows
    sources = _file("sources.json")  # which sources landed (rows, files, errors) and which are missing, why
    findings_canonicalize = _file("findings_canonicalize.parquet")
    # derive
    derived = _file("derived.parquet")  # Biểu 06 rows derived from the dossier records
    definition_moves = _file("definition_moves.parquet")  # why vendors' rule sets give other figures (transforms/explain.py)
    # validate
    findings_validate = _file("findings_validate.parquet")
    gx_results = _file("gx_results.json")
    gx_data_docs = _file("gx_data_docs")
    history_seen = _file("history_seen.json")  # the earlier periods the warehouse held when validating
    # reconcile
    reconciled = _file("reconciled.parquet")  # one figure per unit, period and field
    unit_status = _file("unit_status.parquet")  # which source won for each unit, its quality status and why
    rollup = _file("rollup.parquet")  # districts and the province, no dossier counted twice
    findings_reconcile = _file("findings_reconcile.parquet")
    gx_results_reconciled = _file("gx_results_reconciled.json")
    # publish
    published = _file("published.json")  # the vintage this run published or found unchanged

    @property
    def findings(self) -> tuple[Path, Path, Path]:
        """Every stage's findings, in stage order."""
        return self.findings_canonicalize, self.findings_validate, self.findings_reconcile
