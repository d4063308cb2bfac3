"""National scale: the synthetic national landing and `tthc bench` (nothing here is timed)."""
import json

import pyarrow.parquet as pq
import pytest

from extractors.registry import landed_source
from tthc.landing import Manifest, sha256_file
from tthc.portal import KEPT_FIELDS
from tthc.config import REPO_ROOT, Settings
from simulator.national import land
from tthc.units import units_for_province, units_in_force
from transforms.canonicalize import canonical_dossiers
from tthc.model import has_unique_dossier_key

NATIONAL = Settings(REPO_ROOT / "config" / "national" / "province.yaml", REPO_ROOT / "config" / "national" / "sources.yaml")
PERSONAL = ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "DiaChi", "Email")


def test_national_units_are_every_province_and_commune_of_the_new_system():
    period = NATIONAL.period("2025-Q3")
    units = units_in_force(units_for_province(NATIONAL), period.end)
    counts = units["level"].value_counts().to_dict()
    assert counts["province"] == 34 and counts["commune"] == 3321
    assert counts["department"] == 34 * len(NATIONAL.departments_per_province)
    assert not units.duplicated(["unit_code"]).any()


def test_generator_is_deterministic_covers_every_province_and_lands_what_canonicalize_reads(tmp_path):
    period = NATIONAL.period("2025-Q3")
    first = land(NATIONAL, period, tmp_path / "a", 20_000, seed=7)
    second = land(NATIONAL, period, tmp_path / "b", 20_000, seed=7)
    assert sha256_file(first / "dossiers.parquet") == sha256_file(second / "dossiers.parquet")
    manifest = Manifest.read(first / "manifest.json")
    assert manifest.status == "ok" and manifest.files[0]["sha256"] == sha256_file(first / "dossiers.parquet")

    table = pq.read_table(first / "dossiers.parquet")
    assert tuple(table.column_names) == KEPT_FIELDS and not set(PERSONAL) & set(table.column_names)
    assert table.num_rows == manifest.rows >= 20_000
    ids = table.column("MaHoSo").to_pylist()
    assert ids == sorted(ids)  # ordered by MaHoSo, as the extractor lands an ids_sorted source
    units = units_in_force(units_for_province(NATIONAL), period.end).set_index("unit_code")
    landed_units = set(table.column("MaCoQuan").to_pylist())
    assert units.loc[sorted(landed_units), "province_code"].nunique() == 34

    rows, findings = canonical_dossiers([landed_source(NATIONAL.source(manifest.source_id), period, tmp_path / "a",
                                                       manifest)], period,
                                        tmp_path / "dossiers.parquet")
    assert rows == 20_000  # the repeated records are de-duplicated, one per MaHoSo
    assert has_unique_dossier_key(pq.read_schema(tmp_path / "dossiers.parquet"))
    canonical = pq.read_table(tmp_path / "dossiers.parquet").to_pandas()
    assert canonical["channel"].notna().all() and set(canonical["status"]) <= set(range(1, 11))
    assert {"records.unreadable_value"} == {f.check_id for f in findings} or not findings


@pytest.mark.xdist_group("national_bench")
def test_bench_writes_every_figure(tmp_path, monkeypatch, capsys):
    from runner.cli import main

    monkeypatch.setenv("TTHC_VAR_DIR", str(tmp_path / "var"))
    out = tmp_path / "bench.json"
    assert main(["bench", "--records", "20000", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("records", "stage_seconds", "pipeline_seconds", "baseline_seconds", "ratio", "records_per_second",
                "peak_rss_bytes", "machine"):
        assert key in result, key
    assert set(result["stage_seconds"]) == {"canonicalize", "derive", "validate", "reconcile", "load", "publish"}
    assert result["records"] >= 20_000 and result["peak_rss_bytes"] > 0 and result["baseline_rows"] > 0
    assert result["published_units"] and result["units"]["expected"] == 3321 + 34 * 17
    assert "pipeline" in capsys.readouterr().out
