"""Every source of the registry on the sample: landed twice (the second time incrementally)
with the same files, watermarks kept, and none of the seeded personal values anywhere under
the landing area."""
import json

import pandas as pd

from extractors.base import watermark_path
from tthc.landing import Manifest
from extractors.registry import extract_source
from tthc.config import load_settings
from runner.local_sources import sample_connections


def test_sources_land_the_same_files_again_and_no_personal_data(small_sample, var):
    settings = load_settings()
    period = settings.period("2024-Q2")
    with sample_connections(small_sample):
        first = {s.id: Manifest.read(extract_source(s, period, var, "r1", settings)) for s in settings.sources}
        second = {s.id: Manifest.read(extract_source(s, period, var, "r2", settings)) for s in settings.sources}
    for source_id, manifest in first.items():
        assert manifest.rows > 0 and second[source_id].files == manifest.files, source_id
    assert second["portal_dvc"].stats["mode"] == "incremental"
    assert second["agency_db_xd_tnmt"].stats["mode"] == "incremental"
    for source_id in ("portal_dvc", "agency_db_xd_tnmt"):
        mark = json.loads(watermark_path(var, source_id).read_text())["periods"]["2024-Q2"]
        assert mark["landed_sha256"] == second[source_id].files[0]["sha256"] and mark["max_updated_at"]

    values = [v for v in (small_sample / "ground_truth" / "personal_values.txt").read_text(encoding="utf-8").split("\n")
              if len(v) >= 8]
    texts = []
    for path in (var / "landing").rglob("*"):
        if path.suffix == ".parquet":
            texts.append(pd.read_parquet(path).to_csv(index=False))
        elif path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    blob = "\n".join(texts)
    assert len(texts) >= 8 and values
    assert [v for v in values if v in blob] == []


def test_an_update_moment_in_the_future_keeps_no_watermark(var):
    from extractors.base import read_watermark
    from extractors.registry import _keep_watermark

    settings = load_settings()
    source, period = settings.source("portal_dvc"), settings.period("2024-Q2")
    for newest, kept in (("2024-06-30T16:00:00", "2024-06-30T16:00:00"), ("2031-01-01T08:00:00", None)):
        manifest = Manifest(source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok",
                            extracted_at="2024-07-02T00:00:00+00:00", run_id="r1",
                            files=[{"path": "dossiers.parquet", "sha256": "x", "rows": 1}], rows=1,
                            stats={"mode": "full", "max_updated_at": newest})
        _keep_watermark(source, period, var, manifest, None)
        assert read_watermark(var, source.id, period)["max_updated_at"] == kept
