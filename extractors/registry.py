"""Runs the right extractor for a source and lands its output atomically with a manifest.

A records source whose registry entry has `incremental:` is extracted incrementally once it
has a landing and a watermark for the period: only the dossiers updated since the watermark
minus the overlap window are fetched, and they replace their earlier versions by id in the
landed file (docs/extractors.md).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from extractors import agency_db, http_api, spreadsheet
from extractors.base import (Manifest, landing_dir, merge_by_key, now_utc, read_watermark, record_failure,
                             staged_landing, write_watermark)
from tthc.config import Settings, Source
from tthc.periods import Period

log = logging.getLogger(__name__)
KINDS = ("http_api", "agency_db", "spreadsheet")
RECORD_EXTRACTORS = {"http_api": (http_api, http_api.KEY), "agency_db": (agency_db, agency_db.KEY)}
DEFAULT_OVERLAP_MINUTES = 24 * 60


def extract_source(source: Source, period: Period, var: Path, run_id: str, settings: Settings,
                   full: bool = False) -> Path:
    """Land one source for one period; returns the manifest path. On failure the previous
    landing stays, a `failed.json` beside it says why, and the error is raised. `full`
    forces a whole-period extraction of a source configured as incremental."""
    final = landing_dir(var, period, source.id)
    since = None if full else _incremental_since(source, period, var, final)
    try:
        with staged_landing(final) as folder:
            if source.kind in RECORD_EXTRACTORS:
                module, key = RECORD_EXTRACTORS[source.kind]
                manifest = module.extract(source, period, folder, run_id, updated_since=since,
                                          quarantine_dir=var / "quarantine" / period.label / source.id)
                if since is not None:
                    manifest = _merge(manifest, final, folder, key)
                manifest.stats.setdefault("mode", "full")
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
    if source.kind in RECORD_EXTRACTORS:
        _keep_watermark(source, period, var, manifest, since)
    log.info("%s: landed %s rows for %s (%d errors)", source.id, manifest.rows, period.label, len(manifest.errors))
    return final / "manifest.json"


def _overlap(source: Source) -> timedelta:
    incremental = source.spec.get("incremental") or {}
    return timedelta(minutes=float(incremental.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES)))


def _incremental_since(source: Source, period: Period, var: Path, final: Path) -> datetime | None:
    """Where an incremental extraction starts, or None for a whole-period one: only when the
    landing now in place is exactly the one the watermark was taken from."""
    if source.kind not in RECORD_EXTRACTORS or not source.spec.get("incremental"):
        return None
    mark = read_watermark(var, source.id, period)
    manifest_path = final / "manifest.json"
    if not mark or not mark.get("max_updated_at") or not manifest_path.exists() or (final / "failed.json").exists():
        return None
    landed = Manifest.read(manifest_path)
    if not landed.files or landed.files[0].get("sha256") != mark.get("landed_sha256"):
        log.info("%s: the landing changed since the watermark was taken: whole-period extraction", source.id)
        return None
    return datetime.fromisoformat(mark["max_updated_at"]) - _overlap(source)


def _merge(delta: Manifest, final: Path, folder: Path, key: str) -> Manifest:
    import pyarrow.parquet as pq

    previous = final / Manifest.read(final / "manifest.json").files[0]["path"]
    delta_file = folder / ".delta.parquet"
    (folder / delta.files[0]["path"]).rename(delta_file)
    merged = merge_by_key(previous, delta_file, folder / delta.files[0]["path"], key, pq.read_schema(delta_file))
    delta_file.unlink()
    previous_mark = Manifest.read(final / "manifest.json").stats.get("max_updated_at")
    newest = max(filter(None, [previous_mark, delta.stats.get("max_updated_at")]), default=None)
    delta.stats.update({"mode": "incremental", "delta_rows": delta.rows, "max_updated_at": newest})
    delta.files, delta.rows = [merged], merged["rows"]
    return delta


# Update moments are the source's wall clock, in its time zone: beyond a day ahead of now is no clock skew.
FUTURE_WATERMARK = timedelta(days=1)


def _keep_watermark(source: Source, period: Period, var: Path, manifest: Manifest, since: datetime | None) -> None:
    """A watermark in the future (a record with an update moment typed years ahead) would make
    every later incremental extraction skip the updates it should fetch: such a watermark is
    not kept, so the next extraction of the period is a whole-period one."""
    newest = manifest.stats.get("max_updated_at")
    if newest and datetime.fromisoformat(newest).replace(tzinfo=None) > \
            datetime.now(timezone.utc).replace(tzinfo=None) + FUTURE_WATERMARK:
        log.warning("%s: newest update moment %s is in the future: no watermark kept, the next extraction "
                    "of %s is a whole-period one", source.id, newest, period.label)
        newest = None
    write_watermark(var, source.id, period, {
        "max_updated_at": newest,
        "overlap_minutes": _overlap(source).total_seconds() / 60,
        "updated_since": since.isoformat() if since else None,
        "mode": manifest.stats["mode"],
        "landed_sha256": manifest.files[0]["sha256"],
        "rows": manifest.rows,
        "run_id": manifest.run_id,
        "extracted_at": manifest.extracted_at,
    })


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
