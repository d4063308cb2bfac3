"""Runs the right extractor for a source and lands its output atomically with a manifest."""
from __future__ import annotations

import logging
from pathlib import Path

from extractors import agency_db, http_api, spreadsheet
from extractors.base import Manifest, landing_dir, now_utc, record_failure, staged_landing
from tthc.config import Settings, Source
from tthc.periods import Period

log = logging.getLogger(__name__)
KINDS = ("http_api", "agency_db", "spreadsheet")


def extract_source(source: Source, period: Period, var: Path, run_id: str, settings: Settings) -> Path:
    """Land one source for one period; returns the manifest path. On failure the previous
    landing stays, a `failed.json` beside it says why, and the error is raised."""
    final = landing_dir(var, period, source.id)
    try:
        with staged_landing(final) as folder:
            if source.kind == "http_api":
                manifest = http_api.extract(source, period, folder, run_id)
            elif source.kind == "agency_db":
                manifest = agency_db.extract(source, period, folder, run_id)
            elif source.kind == "spreadsheet":
                quarantine_dir = var / "quarantine" / period.label / source.id
                manifest = spreadsheet.extract(source, period, folder, run_id, settings, quarantine_dir)
            else:
                raise ValueError(f"source {source.id}: unknown kind {source.kind!r}, expected one of {KINDS}")
            manifest.write(folder)
    except Exception as exc:
        record_failure(final, Manifest(
            source_id=source.id, kind=source.kind, period=period.as_dict(), status="failed",
            extracted_at=now_utc(), run_id=run_id, failure=f"{type(exc).__name__}: {exc}"))
        raise
    log.info("%s: landed %s rows for %s (%d errors)", source.id, manifest.rows, period.label, len(manifest.errors))
    return final / "manifest.json"


def landed_sources(settings: Settings, period: Period, var: Path) -> tuple[dict[str, Manifest], dict[str, str]]:
    """The manifest of each source's latest successful landing for the period, and the
    sources whose latest attempt failed or that were never landed, with why."""
    landed: dict[str, Manifest] = {}
    missing: dict[str, str] = {}
    for source in settings.sources:
        folder = landing_dir(var, period, source.id)
        manifest_path, failed_path = folder / "manifest.json", folder / "failed.json"
        if failed_path.exists():
            missing[source.id] = Manifest.read(failed_path).failure or "extraction failed"
        elif manifest_path.exists():
            landed[source.id] = Manifest.read(manifest_path)
        else:
            missing[source.id] = "not extracted for this period"
    return landed, missing
