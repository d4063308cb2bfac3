"""The spreadsheet extractor on the corpus in tests/data/spreadsheets (made by
tests/data/make_spreadsheet_corpus.py): every file's expected outcome, in one extraction."""
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tthc.landing import Manifest
from extractors.registry import extract_source
from tthc.config import load_settings

CORPUS = Path(__file__).resolve().parent / "data" / "spreadsheets"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    inbox = root / "inbox" / "2024-Q2"
    inbox.mkdir(parents=True)
    for name in EXPECTED:
        shutil.copy2(CORPUS / name, inbox / name)
    settings = load_settings()
    source = settings.source("commune_spreadsheets")
    source = type(source)(source.id, source.kind, {**source.spec, "path": str(root / "inbox")})
    path = extract_source(source, settings.period("2024-Q2"), root / "var", "corpus", settings)
    manifest = Manifest.read(path)
    rows = pq.read_table(path.parent / manifest.files[0]["path"]).to_pylist()
    return manifest, rows, root / "var" / "quarantine" / "2024-Q2" / "commune_spreadsheets"


def test_the_corpus_has_at_least_20_files():
    assert len(EXPECTED) >= 20
    assert {p.name for p in CORPUS.iterdir()} - {"expected.json"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gives_its_expected_outcome(extracted, name):
    manifest, rows, quarantine = extracted
    expected = EXPECTED[name]
    mine = [r for r in rows if r["file"] == name]
    errors = [e for e in manifest.errors if e["file"] == name]
    warnings = [w for w in manifest.warnings if w["file"] == name]
    if "refused" in expected:
        assert mine == []
        (error,) = errors
        assert expected["refused"] in error["message"] and name in error["message"]
        assert (quarantine / name).exists() and expected["refused"] in (quarantine / f"{name}.reason.txt").read_text()
        return
    assert not (quarantine / name).exists()
    units = expected.get("units") or [expected["unit"]]
    assert sorted({r["unit_code"] for r in mine}) == units
    assert {(str(r["period_start"]), str(r["period_end"])) for r in mine} == {("2024-04-01", "2024-06-30")}
    fields = {r["field_code"]: r for r in mine if not r["is_total"]}
    for code, figures in expected.get("fields", {}).items():
        assert {k: fields[code][k] for k in figures} == figures, code
    for kind, found in (("errors", errors), ("warnings", warnings)):
        wanted = expected[kind]
        assert len(found) == len(wanted), [f["message"] for f in found]
        for row, column, text in wanted:
            assert any(f["row"] == row and f["column"] == column and text in f["message"] and f["sheet"]
                       for f in found), (row, column, text, [(f["row"], f["column"], f["message"]) for f in found])
