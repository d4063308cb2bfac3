"""Runs the right extractor for a source and lands its output atomically with a manifest.

A records source whose registry entry has `incremental:` is extracted incrementally once it
has a landing and a watermark for the period: only the dossiers updated since the watermark
minus the overlap window are fetched, and they replace their earlier versions by id in the
landed file (docs/extractors.md).

A source kind is one module of `KINDS` declaring KIND, BASIS, KEY, `landing_schema(source)`,
`extract(source, period, folder, job)` and `canonical(source)` (docs/extractors.md, "Adding a
source kind"): nothing here or downstream compares kind names.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

from extractors import agency_db, http_api, spreadsheet
from extractors.base import (ExtractJob, merge_by_key, now_utc, read_watermark, record_failure, staged_landing,
                             write_watermark)
from tthc.config import Settings, Source
from tthc.landing import BASES, MANIFEST, LandedSource, Manifest, landed_path, landing_dir, sha256_file
from tthc.periods import Period

log = logging.getLogger(__name__)
# a source kind is a module (docs/extractors.md, "Adding a source kind")
KINDS: dict[str, ModuleType] = {"http_api": http_api, "agency_db": agency_db, "spreadsheet": spreadsheet}
DEFAULT_OVERLAP_MINUTES = 24 * 60
for _kind, _module in KINDS.items():
    assert _module.KIND == _kind, f"extractors.{_module.__name__} declares KIND {_module.KIND!r}, registered as {_kind!r}"


def kind_of(source: Source) -> ModuleType:
    """The module of the source's kind; ValueError naming the source for an unknown kind."""
    module = KINDS.get(source.kind)
    if module is None:
        raise ValueError(f"source {source.id}: unknown kind {source.kind!r}, expected one of {tuple(KINDS)}")
    return module


def basis_of(source: Source) -> str:
    """What the source's figures rest on: "records" (dossiers counted here) or "self_reported"."""
    basis = kind_of(source).BASIS
    assert basis in BASES, f"kind {source.kind}: BASIS {basis!r} is not one of {BASES}"
    return basis


def extract_source(source: Source, period: Period, var: Path, run_id: str, settings: Settings,
                   full: bool = False, deadline: float | None = None, budget_seconds: float | None = None) -> Path:
    """Land one source for one period; returns the manifest path. On failure the previous
    landing stays, a `failed.json` beside it says why, and the error is raised. `full`
    forces a whole-period extraction of a source configured as incremental. `deadline`
    (time.monotonic()) is when the run's time budget of `budget_seconds` is spent: a source
    still extracting then fails (RunBudgetSpent), one that starts after it is not tried."""
    final = landing_dir(var, period, source.id)
    since = None if full else _incremental_since(source, period, var, final)
    try:
        module = kind_of(source)
        job = ExtractJob(run_id=run_id, settings=settings, quarantine_dir=var / "quarantine" / period.label / source.id,
                         updated_since=since, previous=_landing_in_place(final), deadline=deadline,
                         budget_seconds=budget_seconds)
        job.check_budget(source.id, None)
        with staged_landing(final) as folder:
            manifest = module.extract(source, period, folder, job)
            if since is not None:
                manifest = _merge(manifest, final, folder, module.KEY)
            if module.KEY is not None:
                manifest.stats.setdefault("mode", "full")
            manifest.write(folder)
    except Exception as exc:
        record_failure(final, Manifest(
            source_id=source.id, kind=source.kind, period=period.as_dict(), status="failed",
            extracted_at=now_utc(), run_id=run_id, failure=f"{type(exc).__name__}: {exc}"))
        raise
    if module.KEY is not None:
        _keep_watermark(source, period, var, manifest, since)
    log.info("%s: landed %s rows for %s (%d errors)", source.id, manifest.rows, period.label, len(manifest.errors))
    return final / MANIFEST


def _landing_in_place(final: Path) -> Manifest | None:
    """The manifest of the landing in place (the last successful one of the window), if readable."""
    try:
        return Manifest.read(final / MANIFEST) if (final / MANIFEST).exists() else None
    except (OSError, ValueError, TypeError):
        return None


def _overlap(source: Source) -> timedelta:
    incremental = source.spec.get("incremental") or {}
    return timedelta(minutes=float(incremental.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES)))


def _incremental_since(source: Source, period: Period, var: Path, final: Path) -> datetime | None:
    """Where an incremental extraction starts, or None for a whole-period one: only when the
    landing now in place is exactly the one the watermark was taken from."""
    module = KINDS.get(source.kind)
    if module is None or module.KEY is None or not source.spec.get("incremental"):
        return None
    mark = read_watermark(var, source.id, period)
    manifest_path = final / MANIFEST
    if not mark or not mark.get("max_updated_at") or not manifest_path.exists() or (final / "failed.json").exists():
        return None
    landed = Manifest.read(manifest_path)
    if not landed.files or landed.files[0].get("sha256") != mark.get("landed_sha256"):
        log.info("%s: the landing changed since the watermark was taken: whole-period extraction", source.id)
        return None
    return datetime.fromisoformat(mark["max_updated_at"]) - _overlap(source)


def _merge(delta: Manifest, final: Path, folder: Path, key: str) -> Manifest:
    import pyarrow.parquet as pq

    previous = final / Manifest.read(final / MANIFEST).files[0]["path"]
    delta_file = folder / ".delta.parquet"
    (folder / delta.files[0]["path"]).rename(delta_file)
    merged = merge_by_key(previous, delta_file, folder / delta.files[0]["path"], key, pq.read_schema(delta_file))
    delta_file.unlink()
    previous_mark = Manifest.read(final / MANIFEST).stats.get("max_updated_at")
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


def landed_source(source: Source, period: Period, var: Path, manifest: Manifest,
                  stale: dict | None = None) -> LandedSource:
    """What canonicalize needs of one landing: the file, the manifest, and the kind's
    declarations (basis, canonical select); `stale`: the failure of a later attempt."""
    return LandedSource(source.id, basis_of(source), landed_path(var, period, source.id, manifest.files), manifest,
                        kind_of(source).canonical(source), stale)


def _changed_since_landed(var: Path, period: Period, source: Source, manifest: Manifest) -> str | None:
    """Why the landed files no longer are what the extraction wrote (sha256 against the
    manifest), or None when they are."""
    for info in manifest.files:
        path = landing_dir(var, period, source.id) / info["path"]
        if not path.exists():
            return f"landed file {path} is gone since extraction (run {manifest.run_id})"
        digest = sha256_file(path)
        if info.get("sha256") and digest != info["sha256"]:
            return (f"landed file changed after extraction: sha256 {digest} ≠ manifest {info['sha256']} "
                    f"({path}, run {manifest.run_id})")
    return None


def landed_sources(settings: Settings, period: Period, var: Path) -> tuple[list[LandedSource], dict[str, str]]:
    """Each source's latest successful landing for the period (in the registry's order), and
    the sources that were never landed or whose every attempt failed, with why. A source whose
    latest attempt failed (failed.json) after an earlier good landing of the period (its
    manifest.json and file still in place) is landed on that landing, with `stale` saying why
    (docs/extractors.md, "A source that fails on a rerun")."""
    landed: list[LandedSource] = []
    missing: dict[str, str] = {}
    for source in settings.sources:
        folder = landing_dir(var, period, source.id)
        manifest_path, failed_path = folder / MANIFEST, folder / "failed.json"
        failed = Manifest.read(failed_path) if failed_path.exists() else None
        manifest = Manifest.read(manifest_path) if manifest_path.exists() else None
        if failed is not None:
            manifest = _previous_landing(manifest_path, source.id, period)
        if manifest is None:
            missing[source.id] = (failed.failure or "extraction failed") if failed is not None \
                else "not extracted for this period"
            continue
        changed = _changed_since_landed(var, period, source, manifest)
        if changed is not None:
            log.error("%s: %s", source.id, changed)
            missing[source.id] = changed
            continue
        stale = None if failed is None else {"failure": failed.failure or "extraction failed",
                                             "failed_at": failed.extracted_at, "failed_run_id": failed.run_id}
        landed.append(landed_source(source, period, var, manifest, stale))
    return landed, missing


def _previous_landing(manifest_path: Path, source_id: str, period: Period) -> Manifest | None:
    """The earlier successful landing still in place beside a failure (manifest and every file
    it names), or None."""
    if not manifest_path.exists():
        return None
    manifest = Manifest.read(manifest_path)
    if manifest.status != "ok":
        return None
    folder = manifest_path.parent
    if not all((folder / f["path"]).exists() for f in manifest.files):
        log.warning("%s: the landing of %s names a file that is not there: not used", source_id, period.label)
        return None
    return manifest
