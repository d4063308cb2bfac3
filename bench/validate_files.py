"""`tthc validate` on large canonical CSV files (issue 21): seconds and peak resident memory of
the command, in a fresh child process per file, for files of growing size. Goal: peak RSS under
1 GiB for 200 MB, and flat beyond (README, "Validation").

    .venv/bin/python bench/validate_files.py [--mb 50 200 400] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.large_csv import write_large_csv  # noqa: E402

# `tthc validate` as the only child of a fresh process, which prints the child's peak RSS in bytes
MEASURED = """
import resource, subprocess, sys
with open(sys.argv[2], "w") as out:
    code = subprocess.run([sys.executable, "-m", "runner.cli", "validate", "--format", "json", sys.argv[1]],
                          stdout=out).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
sys.exit(code)
"""


def bench(megabytes: int, folder: Path) -> dict:
    path = folder / f"bieu06_{megabytes}mb.csv"
    started = time.perf_counter()
    rows = write_large_csv(path, megabytes * 1_000_000)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURED, str(path), str(folder / "findings.json")],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    seconds = time.perf_counter() - started
    findings = json.loads((folder / "findings.json").read_text(encoding="utf-8"))
    out = {"mb": round(path.stat().st_size / 1e6), "rows": rows, "seconds": round(seconds, 1),
           "peak_rss_mib": int(result.stdout.split()[-1]) // 2**20, "exit": result.returncode,
           "findings_listed": len(findings), "generated_s": round(generated, 1),
           "load_average": os.getloadavg()[0], "checked_on": date.today().isoformat()}
    path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, nargs="+", default=[50, 200, 400])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"cpus": os.cpu_count(), "files": []}
    with tempfile.TemporaryDirectory() as folder:
        for megabytes in args.mb:
            results["files"].append(bench(megabytes, Path(folder)))
            print(json.dumps(results["files"][-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
