"""A department listed twice in the province file is a finding, not a stopped quarter."""
from __future__ import annotations

import duckdb
import yaml

from tests.conftest import REPO
from tthc.config import Settings


def province_with_a_repeat(tmp_path):
    doc = yaml.safe_load((REPO / "config" / "province.yaml").read_text(encoding="utf-8"))
    doc["reference_data"] = str(REPO / doc["reference_data"])
    repeat = dict(doc["departments"][2], name="Sở Tài chính (dòng nhập lại)")
    doc["departments"].append(repeat)
    path = tmp_path / "province.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path, repeat


def test_a_repeated_department_is_kept_once_and_named(tmp_path):
    path, repeat = province_with_a_repeat(tmp_path)
    settings = Settings(path, REPO / "config" / "sources.yaml")
    codes = [d["code"] for d in settings.departments]
    assert codes.count(repeat["code"]) == 1 and settings.repeated_departments == [repeat]


def test_a_run_with_a_repeated_department_publishes_with_a_finding(small_sample, tmp_path):
    from runner import pipeline
    from runner.local_sources import environment, sample_connections

    path, repeat = province_with_a_repeat(tmp_path)
    var = tmp_path / "var"
    with environment(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None, TTHC_PROVINCE_FILE=str(path)), \
            sample_connections(small_sample):
        summary = pipeline.run(pipeline.make_context("2025-Q2", run_id="repeat"))
    assert summary["published"]["vintage"] == 1
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        found = con.sql("SELECT severity, message FROM quality.findings WHERE check_id = 'config.unit_repeated'"
                        ).fetchall()
        units = con.sql("SELECT count(*) FROM publish.bieu06_by_unit WHERE unit_code = $c",
                        params={"c": repeat["code"]}).fetchall()[0][0]
    assert len(found) == 1 and found[0][0] == "warning" and repeat["code"] in found[0][1]
    assert units == 1
