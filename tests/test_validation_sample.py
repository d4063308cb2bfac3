"""The sample's seeded defects are all found by a run, and nothing else is reported as critical;
`tthc validate` on a sample workbook and on canonical CSV."""
import json
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from runner import pipeline
from runner.local_sources import sample_connections
from tthc.form import FIGURES

pytestmark = pytest.mark.xdist_group("validation_sample")  # the two runs are made once, on one worker
PERIODS = ("2025-Q1", "2025-Q2")


@pytest.fixture(scope="module")
def runs(small_sample, tmp_path_factory):
    import os

    var = tmp_path_factory.mktemp("validation") / "var"
    saved = os.environ.get("TTHC_VAR_DIR")
    os.environ["TTHC_VAR_DIR"] = str(var)
    try:
        contexts = {}
        with sample_connections(small_sample):
            for label in PERIODS:
                contexts[label] = pipeline.make_context(label, run_id=f"validation-{label}")
                pipeline.run(contexts[label])
        with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
            findings = con.sql("SELECT * FROM quality.findings").df()
            quarantine = con.sql("SELECT * FROM quality.quarantine").df()
        yield {"var": var, "contexts": contexts, "findings": findings, "quarantine": quarantine,
               "defects": pd.read_csv(small_sample / "ground_truth" / "defects.csv", dtype=str, keep_default_na=False)}
    finally:
        if saved is None:
            os.environ.pop("TTHC_VAR_DIR", None)
        else:
            os.environ["TTHC_VAR_DIR"] = saved


def test_every_seeded_defect_is_found(runs):
    findings, defects = runs["findings"], runs["defects"]
    defects = defects[defects["period"].isin(PERIODS) & (defects["kind"] != "text_number")]
    assert len(defects) > 0
    start = {label: runs["contexts"][label].period.start for label in PERIODS}
    for d in defects.itertuples():
        mine = findings[(findings["unit_code"] == d.unit_code) & (findings["period_start"] == pd.Timestamp(start[d.period]))]
        if d.kind in ("typing_error", "carried_over_mismatch"):
            checks = set(mine.loc[mine["field_code"] == d.field_code, "check_id"])
            assert checks & {"identity.received", "identity.resolved", "identity.pending", "identity.balance",
                             "continuity.carried_over"}, f"{d.defect_id} {d.kind} not found"
            if d.kind == "typing_error":
                assert "diagnosis.typing_error" in checks
        elif d.kind == "missing_report":
            assert set(mine["check_id"]) & {"completeness.missing_report", "reconcile.incomplete_coverage"}
        elif d.kind == "portal_duplicate":
            assert set(mine["check_id"]) & {"records.duplicate_across_sources", "records.duplicate_within_source"}


def test_nothing_but_seeded_defects_is_critical(runs):
    findings, defects = runs["findings"], runs["defects"]
    critical = findings[findings["severity"] == "critical"]
    seeded = set(zip(defects["period"], defects["unit_code"], defects["field_code"]))
    # a vendor unit id without a row in the unit-id table: every finding under that raw id, any field
    unresolved = defects[defects["kind"] == "unresolved_unit"]
    raw_ids = set(zip(unresolved["period"], unresolved["unit_code"]))
    label = {runs["contexts"][p].period.start: p for p in PERIODS}
    for f in critical.itertuples():
        where = (label[f.period_start.date()], f.unit_code)
        assert (*where, f.field_code) in seeded or where in raw_ids, f"not seeded: {f.message}"
    # withheld: every unit with a critical finding; a raw vendor id is no unit and has nothing to withhold
    assert set(runs["quarantine"]["unit_code"]) == set(critical["unit_code"]) - {u for _, u in raw_ids}


def test_a_typing_error_gets_a_suggested_fix_where_one_explains_it(runs):
    diagnosed = runs["findings"][runs["findings"]["check_id"] == "diagnosis.typing_error"]
    assert len(diagnosed) > 0
    for f in diagnosed.itertuples():
        candidates = json.loads(f.expected)
        assert pd.isna(f.suggested_fix) == (len(candidates) != 1)


def test_each_run_writes_the_callback_list_and_data_docs(runs):
    ctx = runs["contexts"]["2025-Q2"]
    assert (ctx.run_dir / "gx_data_docs" / "index.html").exists()
    callback = pd.read_csv(ctx.run_dir / "danh_sach_goi_lai.csv", dtype=str)
    assert {"Mã đơn vị", "Liên hệ", "Chỉ tiêu", "Số có thể đúng"} <= set(callback.columns)
    assert pd.read_excel(ctx.run_dir / "danh_sach_goi_lai.xlsx", header=1).shape[0] == len(callback)
    assert len(callback) > 0
    assert not callback["Chỉ tiêu"].fillna("").str.contains(r"\b[a-z]+_[a-z_]+\b").any()  # no column's code name
    q1 = runs["findings"][(runs["findings"]["check_id"] == "continuity.unchecked")]
    assert len(q1) >= 1  # the first period had no previous one in the warehouse


class Ran:
    def __init__(self, returncode, stdout):
        self.returncode, self.stdout = returncode, stdout


@pytest.fixture
def cli(capsys):
    from runner.cli import main

    def run(*args):
        capsys.readouterr()
        code = main(["validate", *args])
        return Ran(code, capsys.readouterr().out)
    return run


def test_cli_exit_status_as_a_process(tmp_path):
    path = tmp_path / "bieu06.csv"
    path.write_text("unit_code,period_start,period_end,field_code,received_total\n01411,2025-04-01,2025-06-30,HT,-3\n",
                    encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "runner.cli", "validate", "--format", "json", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)[0]["check"] == "schema.count_unreadable"


def test_cli_on_sample_workbooks(small_sample, cli):
    defects = pd.read_csv(small_sample / "ground_truth" / "defects.csv", dtype=str, keep_default_na=False)
    typed = defects[(defects["kind"] == "typing_error") & (defects["period"] == "2025-Q2")].iloc[0]
    broken = small_sample / "spreadsheets" / "2025-Q2" / f"Bieu06_{typed.unit_code}.xlsx"
    clean_units = set(defects.loc[defects["period"] == "2025-Q2", "unit_code"])
    clean = next(p for p in sorted((small_sample / "spreadsheets" / "2025-Q2").glob("*.xlsx"))
                 if p.stem.removeprefix("Bieu06_") not in clean_units)
    result = cli(str(clean))
    assert result.returncode == 0, result.stdout + result.stderr
    result = cli("--format", "json", str(broken), str(clean))
    findings = json.loads(result.stdout)
    mine = [f for f in findings if f["unit_code"] == typed.unit_code and f["field_code"] == typed.field_code]
    assert {"identity.balance", "diagnosis.typing_error"} & {f["check"] for f in mine}
    for f in findings:
        assert {"unit_code", "period_start", "period_end", "field_code", "check", "severity", "message", "columns",
                "suggested_fix", "candidates"} <= set(f)
    assert result.returncode == (1 if any(f["severity"] == "critical" for f in findings) else 0)


def test_cli_on_canonical_csv(tmp_path, cli):
    header = "unit_code,period_start,period_end,field_code," + ",".join(FIGURES)
    good = "01411,2025-04-01,2025-06-30,HT,140.683,100.000,40.000,683,139.907,100.000,30.000,9.907,700,600,100,76"
    typo = good.replace("139.907", "138.907").replace(",HT,", ",CT,")
    path = tmp_path / "bieu06.csv"
    path.write_text("\n".join([header, good]) + "\n", encoding="utf-8")
    assert cli(str(path)).returncode == 0
    path.write_text("\n".join([header, good, typo]) + "\n", encoding="utf-8")
    result = cli("--format", "json", str(path))
    assert result.returncode == 1
    resolved = [f for f in json.loads(result.stdout) if f["check"] == "identity.resolved"]
    assert resolved[0]["suggested_fix"] == {"resolved_total": 139907}
    assert resolved[0]["candidates"] == [{"resolved_total": 139907}]
    assert resolved[0]["field_code"] == "CT" and "138.907" in resolved[0]["message"]
    text = cli(str(path))
    assert text.returncode == 1 and "139.907" in text.stdout
    (tmp_path / "bad.csv").write_text("no,columns\n1,2\n", encoding="utf-8")
    assert cli(str(tmp_path / "bad.csv")).returncode == 2
    assert cli(str(tmp_path / "missing.csv")).returncode == 2


def test_the_callback_list_names_record_columns_in_vietnamese():
    from datetime import date

    from tthc.findings import Finding
    from validations.callback import callback_rows

    units = pd.DataFrame([{"unit_code": "000.00.01.H04", "unit_name": "Sở Tư pháp", "level": "department"}])
    findings = [Finding("records.finished_status", "warning", "…", date(2025, 7, 1), date(2025, 9, 30),
                        unit_code="000.00.01.H04", columns=["finished_at", "status"]),
                Finding("records.unit_unknown", "critical", "…", date(2025, 7, 1), date(2025, 9, 30),
                        unit_code="9cd88dc1", columns=["unit_code"]),
                Finding("identity.received", "critical", "…", date(2025, 7, 1), date(2025, 9, 30),
                        unit_code="000.00.01.H04", columns=["received_total"])]
    rows = callback_rows(findings, units)
    labels = dict(zip(rows["Mã kiểm tra"], rows["Chỉ tiêu"]))
    assert labels == {"records.finished_status": "Ngày kết thúc xử lý, Trạng thái hồ sơ",
                      "records.unit_unknown": "Mã đơn vị", "identity.received": "Tổng số nhận giải quyết (3)"}
