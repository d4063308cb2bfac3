"""`tthc bench`: the core pipeline at national scale against what DuckDB alone needs.

1. Synthetic national sources (simulator/national.py) are landed once per (records, seed)
   under `var/bench/national_<records>_<seed>/landing/`, outside the timed part.
2. A fresh child process runs the core stages of runner/pipeline.py (canonicalize → derive →
   validate → reconcile → load → publish, no scheduler, no extraction) on the national
   configuration (config/national/), into a fresh DuckDB warehouse by default, timing each.
3. Another fresh child process runs the baseline: DuckDB reading the same landed Parquet,
   parsing its text dates and computing the same Biểu 06 figures (transforms/derive.py's
   definitions) per unit and field with one GROUP BY.
Peak resident memory is each child's VmHWM (/proc/self/status): the generator is not counted.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tthc.config import REPO_ROOT, var_dir

NATIONAL_PROVINCE = REPO_ROOT / "config" / "national" / "province.yaml"
NATIONAL_SOURCES = REPO_ROOT / "config" / "national" / "sources.yaml"
PERIOD = "2025-Q3"
DEFAULT_MEMORY_LIMIT = "1500MB"


def _env(folder: Path, memory_limit: str | None, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TTHC_PROVINCE_FILE": str(NATIONAL_PROVINCE), "TTHC_SOURCES_FILE": str(NATIONAL_SOURCES),
                "TTHC_VAR_DIR": str(folder), "GX_ANALYTICS_ENABLED": "false",
                "TTHC_DUCKDB_TEMP_DIR": str(folder / "duckdb_tmp")})
    if memory_limit:
        env["TTHC_DUCKDB_MEMORY_LIMIT"] = memory_limit
    if threads:
        env["TTHC_DUCKDB_THREADS"] = str(threads)
    return env


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ensure_landing(folder: Path, records: int, seed: int) -> dict:
    """The synthetic landing for (records, seed), generated unless already there."""
    from tthc.landing import MANIFEST, Manifest, landing_dir
    from tthc.config import load_settings
    from simulator.national import land

    settings = load_settings()
    period = settings.period(PERIOD)
    source = next(s for s in settings.sources if s.kind == "http_api")
    manifest_path = landing_dir(folder, period, source.id) / MANIFEST
    if manifest_path.exists():
        stats = Manifest.read(manifest_path).stats
        if stats.get("records") == records and stats.get("seed") == seed:
            return {"generated": False, "seconds": 0.0, "rows": Manifest.read(manifest_path).rows}
    started = time.perf_counter()
    land(settings, period, folder, records, seed, source.id)
    return {"generated": True, "seconds": time.perf_counter() - started, "rows": Manifest.read(manifest_path).rows}


def child_pipeline(warehouse_url: str) -> dict:
    """Runs in a fresh process: every core stage, timed."""
    from runner import pipeline

    ctx = pipeline.make_context(PERIOD, run_id="bench", warehouse_url=warehouse_url)
    stages = {}
    for stage in pipeline.STAGES:
        started = time.perf_counter()
        result = stage(ctx)
        stages[stage.__name__] = time.perf_counter() - started
        print(f"  {stage.__name__}: {stages[stage.__name__]:.1f} s", file=sys.stderr, flush=True)
        if stage is pipeline.canonicalize:
            dossiers = result["dossiers"]
    summary = pipeline.summary(ctx)
    return {"stages": stages, "dossiers": dossiers, "units": summary["units"],
            "published_units": (summary.get("published") or {}).get("units"), "peak_rss_bytes": peak_rss_bytes()}


BASELINE_VIEW = """
    CREATE VIEW dossiers AS
    SELECT 'portal' AS source_id, "MaHoSo" AS dossier_id, "MaCoQuan" AS unit_code, "MaLinhVuc" AS field_code,
           CASE "KenhThucHien" WHEN '2' THEN 'online' WHEN '3' THEN 'postal' ELSE 'in_person' END AS channel,
           try_strptime("NgayTiepNhan", '%Y%m%d%H%M%S') AS received_at,
           try_strptime("NgayHenTra", '%Y%m%d%H%M%S') AS due_at,
           try_strptime("NgayKetThucXuLy", '%Y%m%d%H%M%S') AS finished_at,
           try_strptime("NgayTra", '%Y%m%d%H%M%S') AS returned_at,
           NULL::TIMESTAMP AS paused_at,
           try_cast("TrangThaiHoSo" AS SMALLINT) AS status
    FROM landed
"""


def child_baseline(landing: str) -> dict:
    """Runs in a fresh process: DuckDB alone, the same figures with one GROUP BY."""
    from tthc import duck
    from tthc.config import load_settings
    from transforms.derive import derivation_params, derivation_sql

    settings = load_settings()
    period = settings.period(PERIOD)
    started = time.perf_counter()
    con = duck.connect()
    con.read_parquet(landing).create_view("landed")
    con.execute(BASELINE_VIEW)
    rows = con.sql(derivation_sql(), params=derivation_params(period, settings.rule_set)).to_arrow_table().num_rows
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "peak_rss_bytes": peak_rss_bytes()}


def _run_child(what: str, arg: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "runner.bench", what, arg], env=env, cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench {what} failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except (OSError, ValueError):
        pass
    import duckdb

    info["duckdb"] = duckdb.__version__
    return info


def bench(records: int, seed: int = 2025, warehouse: str | None = None, memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
          threads: int | None = None, folder: Path | None = None) -> dict:
    folder = folder or var_dir() / "bench" / f"national_{records}_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    env = _env(folder, memory_limit, threads)
    generation = _run_child("generate", json.dumps({"records": records, "seed": seed}), env)
    for leftover in ("runs", "publish", "locks", "duckdb_tmp"):
        shutil.rmtree(folder / leftover, ignore_errors=True)
    (folder / "duckdb_tmp").mkdir()
    if warehouse is None:
        for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "warehouse.duckdb.lock"):
            (folder / name).unlink(missing_ok=True)
        warehouse = f"duckdb:///{folder / 'warehouse.duckdb'}"
    pipeline = _run_child("pipeline", warehouse, env)
    from tthc.landing import LANDING

    landing = next((folder / LANDING / PERIOD).glob("*/dossiers.parquet"))
    baseline = _run_child("baseline", str(landing), env)
    pipeline_seconds = sum(pipeline["stages"].values())
    rows = generation["rows"]
    return {
        "records": rows, "requested_records": records, "seed": seed, "period": PERIOD,
        "dossiers_after_dedup": pipeline["dossiers"],
        "stage_seconds": {k: round(v, 3) for k, v in pipeline["stages"].items()},
        "pipeline_seconds": round(pipeline_seconds, 3),
        "baseline_seconds": round(baseline["seconds"], 3),
        "ratio": round(pipeline_seconds / baseline["seconds"], 2),
        "records_per_second": round(rows / pipeline_seconds),
        "peak_rss_bytes": pipeline["peak_rss_bytes"],
        "peak_rss_mib": round(pipeline["peak_rss_bytes"] / 2**20),
        "baseline_peak_rss_mib": round(baseline["peak_rss_bytes"] / 2**20),
        "units": pipeline["units"], "published_units": pipeline["published_units"],
        "baseline_rows": baseline["rows"],
        "generation_seconds": round(generation["seconds"], 1), "generated": generation["generated"],
        "warehouse": warehouse, "duckdb_memory_limit": memory_limit, "duckdb_threads": threads,
        "machine": machine(),
    }


def format_result(result: dict) -> str:
    dedup = f"(dossiers after de-duplication {result['dossiers_after_dedup']:,})"
    lines = [f"records                {result['records']:>14,}  {dedup}"]
    for stage, seconds in result["stage_seconds"].items():
        lines.append(f"  {stage:<20} {seconds:>14.1f} s")
    lines += [
        f"pipeline               {result['pipeline_seconds']:>14.1f} s",
        f"baseline (DuckDB)      {result['baseline_seconds']:>14.1f} s",
        f"ratio                  {result['ratio']:>14.2f}",
        f"records/s              {result['records_per_second']:>14,}",
        f"peak RSS               {result['peak_rss_mib']:>14,} MiB  (baseline {result['baseline_peak_rss_mib']:,} MiB)",
        f"units                  {result['units']}",
    ]
    return "\n".join(lines)


def _child_main(argv: list[str]) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    what, arg = argv
    if what == "generate":
        spec = json.loads(arg)
        result = ensure_landing(var_dir(), spec["records"], spec["seed"])
    elif what == "pipeline":
        result = child_pipeline(arg)
    elif what == "baseline":
        result = child_baseline(arg)
    else:
        raise SystemExit(f"unknown bench step {what!r}")
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    code = _child_main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # no interpreter teardown (see runner.cli.entry_point)
