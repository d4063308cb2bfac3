"""Outliers gate publishing (`figures.outlier`): a unit's figure far beyond every reference it has
(its own dossier records, its last quarters, its peers, the previous vintage of the quarter) is
critical (withheld, in the call-back list with the probable slip) or, milder, a warning; the
thresholds come from config/province.yaml `outliers:`; a missing reference never gates.

The measured fault: a commune's workbook with a figure 6 typed 600006 and the row's total
adjusted to match, so every identity of the row holds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tthc.config import ConfigError, Outliers, load_settings
from tthc.form import FIGURES
from validations.bieu06_rows import prepare_rows, with_crosscheck
from validations.callback import callback_rows
from validations.diagnosis import extra_digits_behind
from validations.gx import GxSession
from validations.unit_quarters import unit_quarters, validate_unit_quarters

SETTINGS = load_settings()
PERIOD = SETTINGS.period("2025-Q2")
EARLIER = [SETTINGS.period(p) for p in ("2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1")]
SLIPPED = "c00"


@pytest.fixture(scope="module")
def session():
    return GxSession()


def figures(online: int, direct: int, carried: int) -> dict:
    """A row of the form that holds every identity."""
    received = online + direct + carried
    resolved = received - carried
    early, late = resolved // 2, resolved // 10
    return {"received_total": received, "received_online": online, "received_direct_postal": direct,
            "carried_over": carried, "resolved_total": resolved, "resolved_early": early,
            "resolved_on_time": resolved - early - late, "resolved_late": late, "pending_total": carried,
            "pending_within_due": carried, "pending_overdue": 0, "returned_withdrawn": 0}


def workbook_rows(unit: str, i: int, period, **overrides) -> list[dict]:
    """A commune's Biểu 06 workbook rows: two fields, sizes varying from commune to commune."""
    out = []
    for field, (online, direct, carried) in (("HT", (6 + i % 4, 13 + i % 5, 2)), ("DD", (40 + 3 * i, 60 + i, 8))):
        row = {"unit_code": unit, "field_code": field, "period_start": period.start, "period_end": period.end,
               "source_id": "commune_spreadsheets", "basis": "self_reported", "landed_file": f"Bieu06_{unit}.xlsx",
               **figures(online, direct, carried)}
        out.append(row | overrides.get(field, {}))
    return out


def slip(typed: int = 600006) -> dict:
    """HT's online figure 6 typed `typed`, the row's total adjusted: every identity holds."""
    row = figures(6, 13, 2)
    return {"HT": {"received_online": typed, "received_total": row["received_total"] - 6 + typed}}


def communes(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unit_code": [f"c{i:02d}" for i in range(n)], "level": "commune",
                         "unit_name": [f"Xã {i}" for i in range(n)]})


def quarter_frame(units: pd.DataFrame, overrides: dict | None = None) -> pd.DataFrame:
    rows = [r for i, u in enumerate(units["unit_code"])
            for r in workbook_rows(u, i, PERIOD, **((overrides or {}) if u == SLIPPED else {}))]
    return prepare_rows(pd.DataFrame(rows), units_in_force=units["unit_code"], period=PERIOD)


def history(units: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([r for p in EARLIER for i, u in enumerate(units["unit_code"]) for r in workbook_rows(u, i, p)])


def outlier_findings(session, frame, earlier, units, published=None, outliers=None):
    found, quarters = validate_unit_quarters(session, frame, earlier, units, PERIOD, published=published,
                                             outliers=outliers or SETTINGS.outliers)
    return [f for f in found if f.check_id == "figures.outlier"], quarters


# ---------------------------------------------------------------- the slip and its diagnosis

def test_extra_digits_behind_a_typed_figure():
    behind = extra_digits_behind(600006)
    assert behind[6] == 5 and behind[60006] == 1 and 600006 not in behind
    assert extra_digits_behind(1200)[12] == 2 and extra_digits_behind(1200)[120] == 1
    assert extra_digits_behind(7) == {}


def test_the_measured_slip_is_critical_with_the_probable_slip_and_in_the_callback_list(session):
    units = communes(12)
    frame = quarter_frame(units, slip())
    assert frame["breach_received_total"].abs().sum() == 0  # every identity of the row holds
    findings, _ = outlier_findings(session, frame, history(units), units)
    assert [(f.unit_code, f.severity, f.field_code) for f in findings] == [(SLIPPED, "critical", "HT")]
    finding = findings[0]
    assert finding.source_id == "commune_spreadsheets"
    assert finding.suggested_fix == {"received_online": 6, "received_total": 21}
    assert json.loads(finding.observed) == {"received_online": 600006, "received_total": 600021}
    assert "Nhận trực tuyến (4) 600.006 có lẽ là 6: thừa chữ số (5 chữ số)" in finding.message
    assert "Tổng số nhận giải quyết (3) tính theo công thức đổi theo, 600.021 thành 21" in finding.message
    assert "trung vị 4 quý trước" in finding.message and "của 12 đơn vị cùng cấp" in finding.message
    assert "Chưa công bố" in finding.message
    references = json.loads(finding.expected)["received_online"]
    assert set(references) == {"history", "peers"}

    listed = callback_rows(findings, units.assign(level="commune"))
    assert listed[["Mã đơn vị", "Mã kiểm tra", "Lĩnh vực"]].values.tolist() == [[SLIPPED, "figures.outlier", "HT"]]
    assert listed.at[0, "Mức độ"].startswith("Nghiêm trọng")
    assert listed.at[0, "Số có thể đúng"] == "Nhận trực tuyến (4) = 6, Tổng số nhận giải quyết (3) = 21"


def test_a_milder_outlier_is_a_warning(session):
    units = communes(12)
    # the unit's online figure about 8 times its references: beyond factor_warning, within factor_critical
    findings, quarters = outlier_findings(session, quarter_frame(units, {"DD": {"received_online": 820,
                                                                                  "received_total": 820 + 60 + 8}}),
                                          history(units), units)
    assert [(f.unit_code, f.severity) for f in findings] == [(SLIPPED, "warning")]
    assert 5 < quarters.set_index("unit_code").at[SLIPPED, "outlier_ratio"] <= 20
    assert "công bố kèm cảnh báo" in findings[0].message


def test_the_real_variation_of_units_is_not_an_outlier(session):
    units = communes(12)
    findings, quarters = outlier_findings(session, quarter_frame(units), history(units), units)
    assert findings == [] and quarters["outlier_ratio"].max() < 2


# ---------------------------------------------------------------- references: each alone gates, none does not

def test_a_unit_with_no_reference_is_not_gated(session):
    units = communes(3)  # fewer peers than min_peers, no history, no vintage, no records
    findings, quarters = outlier_findings(session, quarter_frame(units, slip()), pd.DataFrame(), units)
    assert findings == []
    assert quarters["outlier_ratio"].isna().all()


@pytest.mark.parametrize("reference", ["history", "vintage", "records", "peers"])
def test_each_reference_alone_gates(session, reference):
    units = communes(12 if reference == "peers" else 3)
    frame = quarter_frame(units, slip())
    earlier = history(units) if reference == "history" else pd.DataFrame()
    published = None
    if reference == "vintage":
        published = pd.DataFrame([{"unit_code": u, "vintage": 1, "source_id": "commune_spreadsheets",
                                   **{f: 150 for f in FIGURES}} for u in units["unit_code"]])
    if reference == "records":  # software that covers the commune partly counted some of its dossiers
        frame["records_figures"] = [json.dumps({f: 3 for f in FIGURES}) for _ in range(len(frame))]
    findings, quarters = outlier_findings(session, frame, earlier, units, published)
    assert [(f.unit_code, f.severity) for f in findings] == [(SLIPPED, "critical")]
    assert set(json.loads(findings[0].expected)["received_online"]) == {reference}
    assert findings[0].suggested_fix["received_online"] == 6


def test_a_figure_like_its_previous_vintage_is_not_gated_by_peers(session):
    """The references are all needed: a unit far above its peers but where its previous vintage
    and history put it is not an outlier."""
    units = communes(12)
    big = {"DD": figures(40_000, 20_000, 100)}
    frame = quarter_frame(units, big)
    published = pd.DataFrame([{"unit_code": SLIPPED, "vintage": 2, "source_id": "commune_spreadsheets",
                               **{f: frame[frame["unit_code"] == SLIPPED][f].sum() for f in FIGURES}}])
    findings, _ = outlier_findings(session, frame, pd.DataFrame(), units, published)
    assert findings == []
    findings, _ = outlier_findings(session, frame, pd.DataFrame(), units)  # peers alone: gated
    assert [f.severity for f in findings] == ["critical"]


# ---------------------------------------------------------------- thresholds from configuration

def test_thresholds_are_read_from_the_province_file():
    configured = yaml.safe_load((REPO / "config" / "province.yaml").read_text(encoding="utf-8"))["outliers"]
    outliers = load_settings().outliers
    assert {k: getattr(outliers, k) for k in configured} == configured
    assert (outliers.factor_critical, outliers.factor_warning, outliers.min_count) == (20, 5, 50)


def test_other_thresholds_change_the_verdict(session):
    units = communes(12)
    frame = quarter_frame(units, slip(60006))  # about 600 times its references
    settings = load_settings()
    settings.province_doc["outliers"] = {"factor_critical": 5000, "factor_warning": 100}
    findings, _ = outlier_findings(session, frame, history(units), units, outliers=settings.outliers)
    assert [f.severity for f in findings] == ["warning"]
    settings.province_doc["outliers"] = {"factor_critical": 5000, "factor_warning": 4000}
    findings, _ = outlier_findings(session, frame, history(units), units, outliers=settings.outliers)
    assert findings == []
    settings.province_doc["outliers"] = {"min_count": 100_000}  # every reference floored above the figure
    findings, _ = outlier_findings(session, frame, history(units), units, outliers=settings.outliers)
    assert findings == []


@pytest.mark.parametrize("doc, words", [
    ({"factor_critical": 5, "factor_warning": 20}, "factor_warning"),
    ({"factor_critical": "many"}, "must be a number"),
    ({"factor_criticl": 20}, "unknown keys"),
    ({"min_count": 0}, "min_count"),
    ([20, 5], "must be a mapping"),
])
def test_a_wrong_outliers_setting_is_a_configuration_error(doc, words):
    settings = load_settings()
    settings.province_doc["outliers"] = doc
    with pytest.raises(ConfigError, match=words):
        assert settings.outliers
    settings.province_doc.pop("outliers")
    assert settings.outliers == Outliers()


# ---------------------------------------------------------------- the sample's real variation, every quarter

@pytest.fixture(scope="module")
def quarter_sample(tmp_path_factory):
    """The sample at a quarter of the province's size (its figures above min_count, its noise
    larger than the full sample's), made once."""
    from simulator.generate import generate

    folder = tmp_path_factory.mktemp("outliers") / "sample"
    generate(folder, seed=2024, scale=0.25)
    return folder


def test_no_outlier_in_any_sample_quarter_and_the_slip_is_caught_there(quarter_sample, tmp_path):
    """Every quarter of the sample, its Biểu 06 rows as the pipeline gets them (figures derived
    from the sources' dossier records, the communes' reported workbook figures with their seeded
    defects), each quarter with the earlier ones as history: no figure is beyond factor_warning.
    The same rows with the measured slip in 2025-Q2 are critical."""
    from simulator.generate import sample_periods
    from transforms.derive import derive_figures
    from tthc.units import units_for_province, units_in_force

    settings = load_settings()
    reported = pd.read_parquet(quarter_sample / "ground_truth" / "spreadsheet_figures.parquet")
    reported = reported[reported["filed"]]
    bases = {s.id: ("self_reported" if s.kind == "spreadsheet" else "records") for s in settings.sources}
    coverage = {s.id: s.coverage for s in settings.sources}
    every_unit = units_for_province(settings)
    earlier, largest = pd.DataFrame(), {}
    for period in sample_periods():
        derived_path = tmp_path / f"{period.label}.parquet"
        derive_figures(quarter_sample / "ground_truth" / "dossiers.parquet", period, derived_path,
                       settings.rule_set)
        mine = reported[reported["period"] == period.label]
        workbooks = mine[["unit_code", "field_code"]].assign(
            source_id="commune_spreadsheets", basis="self_reported", period_start=period.start, period_end=period.end,
            **{f: mine[f"reported_{f}"].astype("Int64") for f in FIGURES})
        units = units_in_force(every_unit, period.end)
        rows = pd.concat([pd.read_parquet(derived_path).assign(basis="records"), workbooks], ignore_index=True)
        rows = rows[rows["unit_code"].isin(units["unit_code"])].reset_index(drop=True)

        def quarters(rows, units=units, period=period, earlier=earlier):
            frame = prepare_rows(rows, units_in_force=units["unit_code"], period=period,
                                 convention=settings.period_convention)
            frame = with_crosscheck(frame, units, period, bases=bases, coverage=coverage)
            return unit_quarters(frame, earlier, units, period, outliers=settings.outliers)

        found = quarters(rows)
        largest[period.label] = round(float(found["outlier_ratio"].max()), 2)
        assert found["outlier_ratio"].notna().sum() > 100
        if period.label == "2025-Q2":
            slipped = rows.copy()
            at = slipped.index[(slipped["source_id"] == "commune_spreadsheets")
                               & (slipped["received_online"] == 6)][0]
            slipped.loc[at, "received_online"] = 600006
            slipped.loc[at, "received_total"] += 600000
            caught = quarters(slipped)
            unit = slipped.at[at, "unit_code"]
            row = caught[(caught["unit_code"] == unit) & (caught["source_id"] == "commune_spreadsheets")].iloc[0]
            assert row["outlier_ratio"] > settings.outliers.factor_critical
            assert json.loads(row["outlier_note"])["slip"]["value"] == 6
            assert (caught["outlier_ratio"] > settings.outliers.factor_warning).sum() == 1
        earlier = pd.concat([earlier, rows], ignore_index=True)
    assert len(largest) == 9
    assert max(largest.values()) < settings.outliers.factor_warning, largest


# ---------------------------------------------------------------- end to end: the slipped workbook in a run

def _slip_a_workbook(folder: Path, period: str) -> tuple[str, int, int]:
    """In one commune workbook of `period`, a field's online figure v typed v0000v (6 → 600006)
    with the row's total adjusted: returns (commune, true online figure, typed)."""
    from openpyxl import load_workbook

    for path in sorted((folder / period).glob("Bieu06_*.xlsx")):
        book = load_workbook(path)
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(min_row=14, max_row=sheet.max_row):
            total, online = row[2].value, row[3].value
            if isinstance(online, int) and isinstance(total, int) and 1 <= online <= 9 and row[1].value:
                typed = int(f"{online}0000{online}")
                row[3].value, row[2].value = typed, total - online + typed
                book.save(path)
                return path.stem.removeprefix("Bieu06_"), online, typed
    raise AssertionError(f"no workbook of {period} to slip")


@pytest.mark.xdist_group("faults_reference")
def test_a_run_withholds_the_slipped_commune_and_the_province_total_excludes_it(small_sample, tmp_path):
    from runner import pipeline
    from runner.local_sources import environment as env, sample_connections
    from tests.test_faults import PERIOD as RUN_PERIOD, duckdb_url, new_var

    var = new_var(tmp_path, small_sample)
    spreadsheets = tmp_path / "spreadsheets"
    shutil.copytree(small_sample / "spreadsheets", spreadsheets)
    commune, true_online, typed = _slip_a_workbook(spreadsheets, RUN_PERIOD)
    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(small_sample):
        with env(TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH=str(spreadsheets)):
            ctx = pipeline.make_context(RUN_PERIOD, run_id="slip", warehouse_url=duckdb_url(var))
            summary = pipeline.run(ctx)
    assert summary["published"]["vintage"] == 1
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        def rows(sql, *params):
            return con.execute(sql, list(params)).fetchall()

        status = rows("SELECT source_id, quality_status FROM core.unit_period_status WHERE unit_code = ?", commune)
        outlier = rows("SELECT severity, field_code, suggested_fix, message FROM quality.findings "
                       "WHERE check_id = 'figures.outlier'")
        quarantined = rows("SELECT source_id FROM quality.quarantine WHERE unit_code = ?", commune)
        published = rows("SELECT count(*) FROM publish.bieu06_by_unit WHERE unit_code = ?", commune)
        province = rows("SELECT received_total, units_not_published FROM publish.bieu06_by_province")
        units_sum = rows("SELECT sum(received_total) FROM publish.bieu06_by_unit")
    assert status == [("commune_spreadsheets", "critical")]
    assert len(outlier) == 1 and outlier[0][0] == "critical"
    fix = json.loads(outlier[0][2])
    assert fix["received_online"] == true_online
    assert f"{typed:,}".replace(",", ".") + f" có lẽ là {true_online}: thừa chữ số" in outlier[0][3]
    assert quarantined == [("commune_spreadsheets",)]
    assert published == [(0,)]
    (received, not_published), = province
    assert received == units_sum[0][0] and received < typed and not_published >= 1
    callback = pd.read_csv(ctx.run_dir / "danh_sach_goi_lai.csv", dtype=str)
    listed = callback[(callback["Mã đơn vị"] == commune) & (callback["Mã kiểm tra"] == "figures.outlier")]
    assert len(listed) == 1 and listed.iloc[0]["Mức độ"].startswith("Nghiêm trọng")
    assert f"Nhận trực tuyến (4) = {true_online}" in listed.iloc[0]["Số có thể đúng"]


def test_the_probable_slip_follows_the_cell_s_own_records_before_its_peers(session):
    """Without history, what software covering the commune partly counted in the cell says what it
    usually holds better than the peers' median: 600006 is 6 where records counted 5, while the
    peers' cells, around 50, would make it 60."""
    units = communes(12)
    rows = [r for i, u in enumerate(units["unit_code"]) for r in workbook_rows(u, i, PERIOD)]
    frame = pd.DataFrame(rows)
    for at in frame.index[(frame["field_code"] == "HT") & (frame["unit_code"] != SLIPPED)]:
        frame.loc[at, "received_online"] = 50
        frame.loc[at, "received_total"] = 50 + frame.at[at, "received_direct_postal"] + frame.at[at, "carried_over"]
    at = frame.index[(frame["field_code"] == "HT") & (frame["unit_code"] == SLIPPED)][0]
    frame.loc[at, ["received_online", "received_total"]] = [600006, 600021]
    frame = prepare_rows(frame, units_in_force=units["unit_code"], period=PERIOD)
    findings, _ = outlier_findings(session, frame, pd.DataFrame(), units)
    assert findings[0].suggested_fix == {"received_online": 60, "received_total": 75}
    frame["records_figures"] = None
    frame.loc[at, "records_figures"] = json.dumps({"received_online": 5, "received_total": 17})
    findings, _ = outlier_findings(session, frame, pd.DataFrame(), units)
    assert findings[0].suggested_fix == {"received_online": 6, "received_total": 21}
    assert "600.006 có lẽ là 6: thừa chữ số" in findings[0].message
