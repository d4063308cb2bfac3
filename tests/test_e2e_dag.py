"""The DAG end to end through Airflow (`airflow dags test`) on the sample sources.

Expected figures are computed here, independently of the pipeline, from the simulator's
ground truth: every true dossier and the figures each commune wrote in its workbook.
"""
import json
import os
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from tthc.form import FACT_FIGURES, FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
PERIOD = "2025-Q2"
START, END = datetime(2025, 4, 1), datetime(2025, 7, 1)  # END: first instant after the period


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    var = tmp_path_factory.mktemp("e2e") / "var"
    saved = os.environ.get("TTHC_VAR_DIR")
    os.environ["TTHC_VAR_DIR"] = str(var)
    try:
        from runner.airflow_local import dags_test
        from runner.local_sources import ensure_sample, sample_connections

        sample = ensure_sample(seed=11, scale=0.05)
        with sample_connections() as env:
            token = json.loads(env["AIRFLOW_CONN_TTHC_PORTAL_DVC"])["password"]
            first = dags_test(PERIOD)
            tables_after_first = snapshot(var)
            second = dags_test(PERIOD)
        consumer = dags_test(PERIOD, "tthc_published_consumer")
        yield {"var": var, "sample": sample, "codes": (first, second, consumer), "first": tables_after_first,
               "token": token}
    finally:
        if saved is None:
            os.environ.pop("TTHC_VAR_DIR", None)
        else:
            os.environ["TTHC_VAR_DIR"] = saved


def query(var, sql):
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).df()


def snapshot(var):
    tables = ["core.fact_bieu06", "core.fact_dossier", "core.bieu06_reconciled", "quality.findings",
              "publish.bieu06_by_unit", "publish.vintages"]
    return {t: query(var, f"SELECT count(*) AS n FROM {t}")["n"][0] for t in tables} | {
        "published": query(var, "SELECT * FROM publish.bieu06_by_unit ORDER BY unit_code").to_csv(index=False)}


def expected_from_truth(dossiers: pd.DataFrame) -> pd.DataFrame:
    """docs/canonical-model.md, written out with pandas masks."""
    d = dossiers[~dossiers["status"].isin([1, 3])].copy()
    finished_kind = d["status"].isin([7, 8, 9, 10]) & d["finished_at"].notna()
    done_before = lambda t: finished_kind & (d["finished_at"] < t)  # noqa: E731
    new = (d["received_at"] >= START) & (d["received_at"] < END)
    online = d["channel"] == "online"
    carried = (d["received_at"] < START) & ~done_before(START)
    finished_now = done_before(END) & (d["finished_at"] >= START)
    resolved = finished_now & d["status"].isin([9, 10])
    days_late = (d["finished_at"].dt.normalize() - d["due_at"].dt.normalize()).dt.days
    pending = (d["received_at"] < END) & ~done_before(END)
    paused = d["status"].isin([5, 6]) | ((d["status"] == 8) & d["finished_at"].isna())  # within due
    overdue = (d["due_at"].dt.normalize() < pd.Timestamp(END)) & ~paused
    flags = pd.DataFrame({
        "received_online": new & online, "received_direct_postal": new & ~online, "carried_over": carried,
        "resolved_early": resolved & (days_late < 0), "resolved_on_time": resolved & (days_late == 0),
        "resolved_late": resolved & (days_late > 0), "pending_within_due": pending & ~overdue,
        "pending_overdue": pending & overdue,
        "returned_withdrawn": finished_now & d["status"].isin([7, 8]),
        "pending_paused": pending & paused,
    })
    flags[["source_id", "unit_code", "field_code"]] = d[["source_id", "unit_code", "field_code"]]
    out = flags.groupby(["source_id", "unit_code", "field_code"]).sum().reset_index()
    out = out[out[list(flags.columns[:9])].sum(axis=1) > 0]
    out["received_total"] = out[["received_online", "received_direct_postal", "carried_over"]].sum(axis=1)
    out["resolved_total"] = out[["resolved_early", "resolved_on_time", "resolved_late"]].sum(axis=1)
    out["pending_total"] = out[["pending_within_due", "pending_overdue"]].sum(axis=1)
    return out


def test_the_dag_succeeds_twice_and_the_consumer_once(run):
    assert run["codes"] == (0, 0, 0)


def test_publish_emits_an_asset_event_per_table_and_the_consumer_reads_them(run):
    import json
    import sqlite3

    with sqlite3.connect(run["var"] / "airflow" / "airflow.db") as db:
        events = db.execute("SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id").fetchall()
    uris = sorted({uri for uri, _ in events})
    assert uris == [f"tthc://warehouse/publish/{t}" for t in
                    ("bieu06_by_field", "bieu06_by_province", "bieu06_by_unit", "indicators_766")]
    assert all(json.loads(extra)["period"] == PERIOD for _, extra in events)
    (summary_file,) = (run["var"] / "downstream").glob("summary_2025-04-01_v1.json")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    province = query(run["var"], "SELECT received_total FROM publish.bieu06_by_province")
    assert summary["province"][0]["received_total"] == province["received_total"][0]
    assert {r["indicator"] for r in summary["indicators_766"]} == {
        "on_time_rate", "online_share", "online_payment_share", "digitisation_share"}


def test_published_files_equal_the_warehouse_and_the_package_validates(run):
    import frictionless

    folder = run["var"] / "publish" / PERIOD / "v1"
    for view in ("bieu06_by_unit", "bieu06_by_province", "bieu06_by_field", "indicators_766"):
        published = pd.read_parquet(folder / f"{view}.parquet")
        warehouse = query(run["var"], f"SELECT * FROM publish.{view}")
        key = [c for c in published.columns if c in ("unit_code", "province_code", "field_code", "indicator")]
        left = published.sort_values(key).reset_index(drop=True)
        right = warehouse[published.columns].sort_values(key).reset_index(drop=True)
        for frame in (left, right):
            for column in ("period_start", "period_end"):
                frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
        from_csv = pd.read_csv(folder / f"{view}.csv", dtype=str, keep_default_na=False)
        assert len(from_csv) == len(published)
    report = frictionless.validate(folder / "datapackage.json")
    assert report.valid, report.flatten(["type", "note"])
    sdmx = pd.read_csv(folder / "bieu06_by_unit.sdmx.csv", dtype={"REF_AREA": str})
    by_unit = query(run["var"], "SELECT unit_code, received_total FROM publish.bieu06_by_unit").set_index("unit_code")
    received = sdmx[sdmx["INDICATOR"] == "RECEIVED_TOTAL"].set_index("REF_AREA")["OBS_VALUE"]
    assert received.sort_index().to_dict() == by_unit["received_total"].sort_index().to_dict()
    names = pd.read_csv(folder / "units.csv", dtype=str)["unit_name"].dropna()
    assert any("Phường" in n or "Xã" in n for n in names)  # Vietnamese names intact in UTF-8


def test_record_figures_equal_the_truth_unit_by_unit(run):
    truth = pd.read_parquet(run["sample"] / "ground_truth" / "dossiers.parquet")
    truth = truth[truth["served_by"] != "none"]
    # dossiers under a vendor unit id the source cannot resolve are not counted under their unit
    # (ground_truth/vendor_unresolved_units.csv counts them; tests/test_vendor_sources.py)
    excluded = pd.read_csv(run["sample"] / "ground_truth" / "vendor_exclusions.csv", dtype=str)
    truth = truth[~truth["dossier_id"].isin(excluded.loc[excluded["reason"] == "unresolved_unit", "dossier_id"])]
    expected = expected_from_truth(truth).set_index(["source_id", "unit_code", "field_code"])[list(FACT_FIGURES)]
    actual = query(run["var"], f"""
        SELECT source_id, unit_code, field_code, {', '.join(FACT_FIGURES)} FROM core.fact_bieu06
        WHERE basis = 'records' AND period_start = '2025-04-01'""").set_index(["source_id", "unit_code", "field_code"])
    raw_ids = set(pd.read_csv(run["sample"] / "ground_truth" / "vendor_unresolved_units.csv", dtype=str)["raw_unit_id"])
    actual = actual[~actual.index.get_level_values("unit_code").isin(raw_ids)]  # kept under their raw id, apart
    assert len(actual) > 100
    pd.testing.assert_frame_equal(actual.sort_index().astype("int64"), expected.sort_index().astype("int64"),
                                  check_names=False)


def test_self_reported_figures_are_read_as_written(run):
    sheets = pd.read_parquet(run["sample"] / "ground_truth" / "spreadsheet_figures.parquet")
    sheets = sheets[(sheets["period"] == PERIOD) & sheets["filed"]]
    expected = sheets.set_index(["unit_code", "field_code"])[[f"reported_{f}" for f in FIGURES]]
    expected.columns = list(FIGURES)
    actual = query(run["var"], f"""
        SELECT unit_code, field_code, {', '.join(FIGURES)} FROM core.fact_bieu06
        WHERE basis = 'self_reported' AND period_start = '2025-04-01'""").set_index(["unit_code", "field_code"])
    pd.testing.assert_frame_equal(actual.sort_index().astype("int64"), expected.sort_index().astype("int64"),
                                  check_names=False)


def test_seeded_figure_defects_are_found_and_withheld_when_critical(run):
    defects = pd.read_csv(run["sample"] / "ground_truth" / "defects.csv", dtype=str)
    defects = defects[(defects["period"] == PERIOD) & defects["kind"].isin(["typing_error", "carried_over_mismatch"])]
    findings = query(run["var"], "SELECT unit_code, field_code, check_id, severity FROM quality.findings "
                                 "WHERE check_id LIKE 'identity.%'")
    found = set(zip(findings["unit_code"], findings["field_code"]))
    assert len(defects) > 0
    for defect in defects.itertuples():
        assert (defect.unit_code, defect.field_code) in found, f"{defect.defect_id} not found"
    critical = set(findings.loc[findings["severity"] == "critical", "unit_code"])
    published = set(query(run["var"], "SELECT unit_code FROM publish.bieu06_by_unit")["unit_code"])
    quarantined = set(query(run["var"], "SELECT unit_code FROM quality.quarantine")["unit_code"])
    assert critical and not (critical & published) and critical == quarantined


def test_published_figures_sum_the_winning_source(run):
    published = query(run["var"], f"""
        SELECT unit_code, source_id, {', '.join(FIGURES)} FROM publish.bieu06_by_unit""").set_index("unit_code")
    reconciled = query(run["var"], f"""
        SELECT unit_code, source_id, {', '.join(f'sum({f}) AS {f}' for f in FIGURES)} FROM core.bieu06_reconciled
        WHERE quality_status <> 'critical' GROUP BY ALL""").set_index("unit_code")
    both = published.index.intersection(reconciled.index)
    assert len(both) > 0.9 * len(published)
    pd.testing.assert_frame_equal(published.loc[both].astype({f: "int64" for f in FIGURES}),
                                  reconciled.loc[both].astype({f: "int64" for f in FIGURES}), check_names=False)
    levels = query(run["var"], "SELECT DISTINCT unit_level FROM publish.bieu06_by_unit")["unit_level"]
    assert set(levels) == {"department", "district", "commune"}


def test_a_rerun_changes_nothing(run):
    assert snapshot(run["var"]) == run["first"]
    vintages = query(run["var"], "SELECT vintage FROM publish.vintages")
    assert vintages["vintage"].tolist() == [1]
    files = sorted(p.name for p in (run["var"] / "publish" / PERIOD).iterdir())
    assert files == ["v1"]


def test_no_personal_data_reaches_landing_or_the_warehouse(run):
    values = [v for v in (run["sample"] / "ground_truth" / "personal_values.txt").read_text(encoding="utf-8").split("\n")
              if len(v) >= 8]
    assert values
    texts = []  # decoded contents: Parquet and DuckDB compress, so raw bytes would prove nothing
    for path in [*(run["var"] / "landing").rglob("*"), *(run["var"] / "publish").rglob("*")]:
        if path.suffix == ".parquet":
            texts.append(pd.read_parquet(path).to_csv(index=False))
        elif path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    tables = query(run["var"], "SELECT table_schema, table_name FROM information_schema.tables")
    for schema, name in tables.itertuples(index=False):
        texts.append(query(run["var"], f'SELECT * FROM "{schema}"."{name}"').to_csv(index=False))
    assert len(texts) > 10
    blob = "\n".join(texts)
    leaked = [v for v in values if v in blob]
    assert leaked == [], f"personal values reached the pipeline's outputs: {leaked[:3]}"


def test_the_api_token_is_in_no_airflow_log_or_output(run):
    """Airflow's own task logs and metadata database too, not only what the pipeline writes."""
    token = run["token"].encode()
    files = [p for p in run["var"].rglob("*") if p.is_file()]
    assert any(p.is_relative_to(run["var"] / "airflow") for p in files)
    leaked = [str(p) for p in files if token in p.read_bytes()]
    leaked += [str(p) for p in files if p.suffix == ".parquet" and run["token"] in pd.read_parquet(p).to_csv()]
    assert leaked == []


def test_the_official_workbook_carries_the_published_figures(run):
    from openpyxl import load_workbook

    folder = run["var"] / "publish" / PERIOD / "v1"
    (workbook,) = folder.glob("Bieu06_*.xlsx")
    sheet = load_workbook(workbook, data_only=True).worksheets[0]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    text = " ".join(str(v) for row in cells for v in row if v is not None)
    assert "Từ ngày 01/04/2025 đến ngày 30/06/2025" in text and "Đơn vị tính" in text
    numbers_row = next(i for i, row in enumerate(cells) if "(3)" in [str(v).strip() for v in row])
    column = {str(v).strip(): j for j, v in enumerate(cells[numbers_row]) if v is not None}
    total_row = cells[numbers_row + 1]  # the grand total comes first under the column numbers
    reconciled = query(run["var"], f"""
        SELECT {', '.join(f'sum(r.{f}) AS {f}' for f in FIGURES)} FROM core.bieu06_reconciled r
        JOIN core.unit_period_status s USING (unit_code, source_id, period_start, period_end)
        WHERE s.quality_status IN ('ok', 'warning')""").iloc[0]
    from tthc.form import FORM_COLUMN_NUMBER

    for figure, number in FORM_COLUMN_NUMBER.items():
        assert total_row[column[f"({number})"]] == reconciled[figure], figure


def test_the_report_renders_in_chromium_with_its_charts(run, tmp_path):
    from tests.support.chromium import Chromium, require_chromium

    report = run["var"] / "publish" / PERIOD / "v1" / "report.html"
    with Chromium(require_chromium()) as browser:
        browser.open(report.as_uri())
        charts = browser.evaluate(
            "Array.from(document.querySelectorAll('svg.chart')).map(s => s.querySelectorAll('rect,path,circle,polyline').length)")
        title = browser.evaluate("document.title")
        errors = browser.console_errors()
        shot = browser.screenshot(tmp_path / "report.png")
    assert errors == []
    assert len(charts) >= 2 and all(n > 0 for n in charts)
    assert "2025-Q2" in title
    assert shot.stat().st_size > 10_000


def test_pending_paused_is_published_beside_the_form_and_never_as_a_zero_for_workbooks(run):
    import openpyxl

    by_unit = query(run["var"], "SELECT unit_code, basis, pending_total, pending_within_due, pending_paused "
                                "FROM publish.bieu06_by_unit")
    records, reports = by_unit[by_unit["basis"] == "records"], by_unit[by_unit["basis"] == "self_reported"]
    assert len(records) and records["pending_paused"].notna().all()  # 0 where none is paused (the sample pauses few)
    assert (records["pending_paused"] <= records["pending_within_due"]).all()  # the province counts them within due
    assert len(reports) and reports["pending_paused"].isna().all()
    # the province's total would be partial: communes report by workbook
    assert query(run["var"], "SELECT pending_paused FROM publish.bieu06_by_province")["pending_paused"].isna().all()
    [path] = (run["var"] / "publish" / PERIOD / "v1").glob("Bieu06_*.xlsx")
    sheet = openpyxl.load_workbook(path).active
    headers = [str(c.value) for row in sheet.iter_rows(min_row=8, max_row=11) for c in row if c.value]
    assert "Đang chờ bổ sung, tạm dừng" in headers and "(15)" in headers
