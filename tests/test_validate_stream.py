"""`tthc validate` streams (issue 21): the same findings as the in-memory validation it replaced
(golden outputs recorded with it), whatever the chunk size; findings bounded per check; a
200 MB CSV validated under 1 GiB of peak resident memory."""
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.validate_files import MEASURED
from runner.validate_files import read_csv, validate_files
from tests.support.bieu06_csv import write_large_csv, write_seeded_csv
from tthc.config import load_settings
from tthc.form import FIGURES
from tthc.units import units_for_province
from validations.bieu06_rows import bieu06_suite, prepare_rows
from validations.gx import KEY_UNIQUE, GxSession, sieve
from validations.offline import FindingsOut

GOLDEN = Path(__file__).parent / "data" / "validate_offline"
WORKBOOKS = Path(__file__).parent / "data" / "spreadsheets"
PEAK_RSS_BOUND = 1 << 30  # README, "Validation"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("seeded") / "seeded_1000.csv"
    write_seeded_csv(path, units_for_province(load_settings()))
    return path


def cases(seeded):
    return {"seeded_1000": [seeded],
            "seeded_and_workbooks": [seeded, WORKBOOKS / "Bieu06_01201.xlsx", WORKBOOKS / "Bieu06_huyen_nhieu_xa.xlsx",
                                     WORKBOOKS / "bao_cao_xa.csv", WORKBOOKS / "Bieu06_01217.csv"]}


def run(paths, output_format="json", **options) -> tuple[str, FindingsOut, list[str]]:
    stream = io.StringIO()
    out = FindingsOut(output_format, stream, options.pop("max_per_check", None))
    unreadable = validate_files([Path(p) for p in paths], load_settings(), out, **options)
    out.close()
    return stream.getvalue(), out, unreadable


@pytest.mark.parametrize("case", ["seeded_1000", "seeded_and_workbooks"])
@pytest.mark.parametrize("output_format", ["json", "text"])
def test_output_identical_to_the_recorded_one(seeded, case, output_format):
    text, _, unreadable = run(cases(seeded)[case], output_format)
    assert text == (GOLDEN / f"{case}.{output_format}").read_text(encoding="utf-8")
    assert len(unreadable) == (2 if case == "seeded_and_workbooks" else 0)


@pytest.mark.parametrize("case", ["seeded_1000", "seeded_and_workbooks"])
def test_small_chunks_give_the_same_findings(seeded, case):
    """Repeated keys, carried-over figures and roll-ups whose rows fall in different chunks."""
    text, _, _ = run(cases(seeded)[case], chunk_bytes=2048, chunk_rows=37)
    golden = json.loads((GOLDEN / f"{case}.json").read_text(encoding="utf-8"))
    assert sorted(map(json.dumps, json.loads(text))) == sorted(map(json.dumps, golden))


def test_the_sieve_agrees_with_gx(seeded):
    """The rows GX is asked to list are those the sieve picks: both must fail the same rows."""
    tables = [t for t, _ in read_csv(seeded)]
    frame = __import__("pyarrow").concat_tables(tables).to_pandas()
    frame[KEY_UNIQUE] = ~frame.duplicated(["unit_code", "period_start", "period_end", "field_code"], keep=False)
    units = units_for_province(load_settings())
    frame = prepare_rows(frame, units_in_force=set(units["unit_code"]), field_codes=["HT", "CT", "DD", "BTXH", "NCC"],
                         convention="calendar_quarter")
    suite = bieu06_suite("sieve", unique_keys=KEY_UNIQUE)
    by_gx = {(c, tuple(cols)): sorted(ids) for c, _, cols, ids in GxSession().validate(frame, suite)}
    by_sieve = {(c, tuple(cols)): sorted(ids) for c, _, cols, ids in sieve(frame, suite)}
    assert by_sieve == by_gx
    assert {c for c, _ in by_gx} >= {"identity.received", "schema.key_unique", "unit.known", "field.known",
                                     "period.convention", "completeness.empty_row", "identity.unchecked"}


def test_findings_are_capped_per_check_with_a_count(tmp_path):
    """Every row breaks an identity: N listed per check, the rest counted in findings.capped."""
    header = "unit_code,period_start,period_end,field_code," + ",".join(FIGURES)
    rows = [f"X{unit:04d},2025-04-01,2025-06-30,HT,11,5,5,0,10,5,5,0,0,0,0,0" for unit in range(3000)]
    path = tmp_path / "broken.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    text, out, _ = run([path], max_per_check=50)
    findings = json.loads(text)
    listed = {}
    for f in findings:
        listed[f["check"]] = listed.get(f["check"], 0) + 1
    assert listed["identity.received"] == listed["unit.known"] == listed["diagnosis.typing_error"] == 50
    capped = {f["observed"]["check"]: f for f in findings if f["check"] == "findings.capped"}
    assert capped["identity.received"]["observed"] == {"check": "identity.received", "listed": 50, "not_listed": 2950}
    assert capped["identity.received"]["severity"] == "critical"
    assert capped["diagnosis.typing_error"]["severity"] == "info"
    assert out.any_critical
    text, _, _ = run([path], "text", max_per_check=50)
    assert text.splitlines()[-1] == "Tổng: 6000 nghiêm trọng, 3000 cảnh báo, 3000 thông tin"  # counted, not listed


def test_csv_rows_read_as_dict_reader_reads_them(tmp_path):
    """BOM, blank lines, a quoted value over two lines, rows with too few or too many cells,
    grouped thousands and unreadable cells, in chunks smaller than the file."""
    header = "unit_code , period_start,period_end,field_code," + ",".join(FIGURES)
    lines = ["01411,2025-04-01,2025-06-30,HT," + ",".join(["1"] * 12), "",
             "01412,2025-04-01,2025-06-30,CT,1.234",  # too few cells: the others unknown
             "01413,2025-04-01,2025-06-30,DD," + ",".join(["2"] * 13),  # one too many: dropped
             '"01\n414",2025-04-01,2025-06-30,HT,' + ",".join(["3"] * 11) + ',"12,5"',
             "01415,01/04/2025,30/06/2025,HT,x" + ",1" * 11]
    path = tmp_path / "ragged.csv"
    path.write_bytes(("\ufeff" + "\n".join([header, *lines]) + "\n").encode("utf-8"))
    tables, findings = [], []
    for table, found in read_csv(path, chunk_bytes=256):
        tables.append(table)
        findings += found
    rows = [r for t in tables for r in t.to_pylist()]
    assert [r["row"] for r in rows] == [2, 3, 4, 5, 6]
    assert [r["unit_code"] for r in rows] == ["01411", "01412", "01413", "01\n414", "01415"]
    assert rows[1]["received_total"] == 1234 and rows[1]["received_online"] is None
    assert rows[2]["returned_withdrawn"] == 2
    assert [(f.check_id, f.location) for f in findings] == [
        ("schema.count_unreadable", "ragged.csv, dòng 5"), ("schema.count_unreadable", "ragged.csv, dòng 6")]
    assert "12,5" in findings[0].message


def test_cli_flag_caps_findings(tmp_path):
    header = "unit_code,period_start,period_end,field_code," + ",".join(FIGURES)
    rows = [f"X{unit:04d},2025-04-01,2025-06-30,HT" + ",1" * 12 for unit in range(30)]
    path = tmp_path / "unknown_units.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "runner.cli", "validate", "--format", "json",
                             "--max-findings-per-check", "5", str(path)], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    checks = [f["check"] for f in json.loads(result.stdout)]
    assert checks.count("unit.known") == 5 and "findings.capped" in checks


def test_a_200_mb_csv_within_the_memory_bound(tmp_path):
    """Peak resident memory of `tthc validate` on a ~200 MB canonical CSV (2.9 million rows,
    every row an unknown unit, one in 997 with a typing error) stays under 1 GiB."""
    path = tmp_path / "large.csv"
    rows = write_large_csv(path, 200_000_000)
    assert path.stat().st_size >= 200_000_000
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURED, str(path), str(tmp_path / "out.json")],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert result.returncode == 1, result.stderr[-2000:]
    peak = int(result.stdout.split()[-1])
    findings = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    capped = {f["observed"]["check"]: f["observed"] for f in findings if f["check"] == "findings.capped"}
    assert capped["unit.known"] == {"check": "unit.known", "listed": 500, "not_listed": rows - 500}
    broken = rows // 480_000 * len(range(0, 480_000, 997))  # the generator's block, written again and again
    assert capped["identity.received"]["listed"] + capped["identity.received"]["not_listed"] == broken
    print(f"{path.stat().st_size / 1e6:.0f} MB, {rows} rows: {seconds:.1f} s, peak RSS {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
