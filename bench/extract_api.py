"""Extraction benchmark: the portal API extractor against a bare `requests` + `json` loop
fetching the same pages from the sample server, and the extractor's peak memory at 100k and
2M records. Goals (issue 3): records/s ratio ≥ 0.5, peak memory at 2M within 20 % of 100k.

    .venv/bin/python bench/extract_api.py [--small 100000] [--large 2000000] [--page-size 1000]

The server runs in its own process (as a real API would), each measured run in a fresh
child process so that its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TOKEN = "bench-token"


def make_portal(folder: Path, n: int) -> None:
    """n dossiers in the portal wire shape, all active in 2024-Q2, personal fields included."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simulator.generate import PORTAL_SCHEMA

    i = np.arange(n)
    ids = np.char.add("H", np.char.zfill(i.astype(str), 9))
    received = np.char.add("202404", np.char.zfill((1 + i % 28).astype(str), 2))
    received = np.char.add(received, "083000")
    text = lambda prefix: pa.array(np.char.add(prefix, i.astype(str)))  # noqa: E731
    columns = {
        "MaHoSo": pa.array(ids), "MaTTHC": pa.array(["1.000001"] * n), "TenTTHC": pa.array(["Đăng ký khai sinh"] * n),
        "MaLinhVuc": pa.array(["HT"] * n), "TenLinhVuc": pa.array(["Hộ tịch"] * n),
        "MaCoQuan": pa.array(np.char.add("01", np.char.zfill((i % 900).astype(str), 3))),
        "KenhThucHien": pa.array(1 + i % 3, pa.int32()), "NgayTiepNhan": pa.array(received),
        "NgayHenTra": pa.array(np.char.replace(received, "202404", "202405")), "NgayKetThucXuLy": pa.nulls(n, pa.string()),
        "NgayTra": pa.nulls(n, pa.string()), "NgayCapNhat": pa.array(received),
        "TrangThaiHoSo": pa.array(np.full(n, 4), pa.int32()),
        "PhiLePhi": pa.array(np.where(i % 3 == 0, 50000, 0), pa.int64()), "DuocThanhToanTrucTuyen": pa.nulls(n, pa.int32()),
        "DanhSachGiayToKetQua": pa.array(['[{"TenGiayTo":"Giấy khai sinh","DuocSoHoa":1}]'] * n),
        "ChuHoSo": text("Nguyễn Văn "), "SoGiayToChuHoSo": text("0792"), "SoDienThoai": text("0912"),
        "DiaChi": text("Số nhà "), "Email": text("a@b.vn#"),
    }
    (folder / "portal").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=PORTAL_SCHEMA), folder / "portal" / "dossiers.parquet",
                   row_group_size=1 << 22)


def child(mode: str, port: int, page_size: int, out: str) -> None:
    """One measured run; prints JSON with records, seconds and peak RSS."""
    started = time.perf_counter()
    if mode == "bare":
        import requests

        records, page = 0, 1
        with requests.Session() as session:
            while True:
                response = session.get(f"http://127.0.0.1:{port}/api/v1/hoso", timeout=60, headers={
                    "Authorization": f"Bearer {TOKEN}"}, params={"tuNgay": "20240401", "denNgay": "20240630",
                                                                 "page": page, "pageSize": page_size})
                data = json.loads(response.content)["data"]
                records += len(data)
                if len(data) < page_size:
                    break
                page += 1
    else:
        from extractors import http_api
        from extractors.base import ExtractJob
        from tthc.config import Source
        from tthc.periods import quarter

        os.environ["AIRFLOW_CONN_BENCH"] = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port,
                                                       "password": TOKEN})
        source = Source("bench", "http_api", {"connection_id": "bench", "page_size": page_size, "timeout_seconds": 60})
        manifest = http_api.extract(source, quarter("2024-Q2", "calendar_quarter"), Path(out), ExtractJob("bench"))
        records = manifest.rows
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    status = Path("/proc/self/status").read_text()
    peak_mib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"records": records, "seconds": seconds, "peak_mib": peak_mib}))


def measure(mode: str, port: int, page_size: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--port", str(port),
                               "--page-size", str(page_size), "--out", out],
                              capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["records"] / result["seconds"]
    return result


def serve(folder: Path) -> tuple[subprocess.Popen, int]:
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    process = subprocess.Popen([sys.executable, "-m", "simulator.server", "--sample", str(folder),
                                "--token-file", str(token_file)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    url = process.stdout.readline().strip()
    return process, int(url.rsplit(":", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=2_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--child", choices=("bare", "extractor"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.port, args.page_size, args.out)
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.small, args.large):
            folder = Path(tmp) / str(n)
            make_portal(folder, n)
            server, port = serve(folder)
            try:
                results[n] = {mode: measure(mode, port, args.page_size) for mode in ("bare", "extractor")}
            finally:
                server.terminate()
                server.wait()
    print(f"{'records':>10} {'bare rec/s':>11} {'extractor rec/s':>16} {'ratio':>6} {'bare peak MiB':>14} "
          f"{'extractor peak MiB':>19}")
    for n, r in results.items():
        print(f"{n:>10,} {r['bare']['rate']:>11,.0f} {r['extractor']['rate']:>16,.0f} "
              f"{r['extractor']['rate'] / r['bare']['rate']:>6.2f} {r['bare']['peak_mib']:>14.0f} "
              f"{r['extractor']['peak_mib']:>19.0f}")
    small, large = results[args.small]["extractor"], results[args.large]["extractor"]
    ratio = large["rate"] / results[args.large]["bare"]["rate"]
    growth = large["peak_mib"] / small["peak_mib"] - 1
    print(f"ratio at {args.large:,}: {ratio:.2f} (goal ≥ 0.5); extractor peak memory {args.large:,} vs "
          f"{args.small:,}: {growth:+.0%} (goal within 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
