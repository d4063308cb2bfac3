"""The analyst's warehouse: on the embedded default analysts read a copy of `publish` and
`quality` refreshed after every publication (warehouse/analyst_copy.py), which an older DuckDB
client opens and whose open session never makes a run wait or fail."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from tests.test_warehouse_faults import PERIOD, new_var, tthc
from warehouse.analyst_copy import STORAGE_VERSION, analyst_copy_path

pytestmark = pytest.mark.xdist_group("analyst_warehouse")


@pytest.fixture(scope="module")
def embedded(small_sample, tmp_path_factory):
    var = new_var(tmp_path_factory.mktemp("analyst"), small_sample)
    first = tthc(var)
    assert first.returncode == 0, first.stderr[-3000:]
    return var


def hold(path) -> subprocess.Popen:
    """An analyst's read-only session on `path`, held until killed."""
    code = (f"import duckdb, time; c = duckdb.connect({str(path)!r}, read_only=True); "
            "c.sql('SELECT count(*) FROM publish.bieu06_by_unit').fetchall(); print('held', flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_the_copy_holds_what_the_analyst_role_reads_with_64_bit_counts(embedded):
    copy = analyst_copy_path(embedded)
    with duckdb.connect(str(copy), read_only=True) as con:
        schemas = {s for (s,) in con.sql("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        assert schemas == {"publish", "quality"}  # never core or staging, as on PostgreSQL
        published = con.sql("SELECT count(*) FROM publish.bieu06_by_unit").fetchall()[0][0]
        types = dict(con.sql("SELECT column_name, data_type FROM duckdb_columns() "
                             "WHERE table_name = 'bieu06_by_province'").fetchall())
        storage = con.sql("SELECT tags FROM duckdb_databases() WHERE NOT internal").fetchall()
    with duckdb.connect(str(embedded / "warehouse.duckdb"), read_only=True) as con:
        assert published == con.sql("SELECT count(*) FROM publish.bieu06_by_unit").fetchall()[0][0] > 100
    assert types["received_total"] == "BIGINT" and "HUGEINT" not in types.values()
    assert STORAGE_VERSION.startswith("v1.") and storage


def test_an_analyst_session_held_on_the_copy_neither_fails_nor_delays_a_run(embedded):
    copy = analyst_copy_path(embedded)
    analyst = hold(copy)
    try:
        rerun = tthc(embedded, "--reason", "late correction", TTHC_WAREHOUSE_WAIT_SECONDS="5")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "waiting" not in rerun.stderr and "held by" not in rerun.stderr
        assert analyst.poll() is None  # the session is still open, on the copy it opened
    finally:
        analyst.kill()
        analyst.wait()
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM publish.vintages").fetchall()[0][0] >= 1
    assert PERIOD


def test_the_published_files_open_in_excel_as_written(embedded):
    """Read the way Excel reads them: the CSV's first bytes decide its encoding (a BOM: UTF-8), and
    a workbook's cell types decide whether 01399 stays 01399 and 0.93 shows as 93%."""
    import openpyxl

    folder = next((embedded / "publish" / PERIOD).glob("v*"))
    raw = (folder / "bieu06_by_unit.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and ("Phường".encode() in raw or "Xã".encode() in raw)
    sheet = openpyxl.load_workbook(folder / "bieu06_by_unit.xlsx").worksheets[0]
    header = [c.value for c in sheet[1]]
    codes = [row[header.index("unit_code")] for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type == "s" for c in codes) and any(c.value.startswith("0") for c in codes)
    assert sum(1 for c in codes if len(c.value) == 5) > 100  # commune codes keep their five digits
    indicators = openpyxl.load_workbook(folder / "indicators_766.xlsx").worksheets[0]
    header = [c.value for c in indicators[1]]
    values = [row[header.index("value")] for row in indicators.iter_rows(min_row=2) if row[header.index("value")].value]
    assert values and all("%" in c.number_format for c in values)
    notes = openpyxl.load_workbook(folder / "bieu06_by_unit.xlsx")["Giải thích"]
    meanings = {r[0].value: r[1].value for r in notes.iter_rows(min_row=2)}
    assert meanings["resolved_late"].startswith("Giải quyết quá hạn (10)")


def test_the_data_dictionary_page_is_the_dictionary():
    from tests.conftest import REPO
    from tthc.dictionary import markdown

    assert (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8") == markdown(), \
        "regenerate: python -c 'from tthc.dictionary import markdown; print(markdown(), end=\"\")' > docs/data-dictionary.md"
