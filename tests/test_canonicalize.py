"""Landed portal records → canonical dossiers, with values that cannot be read."""
import json

import pyarrow as pa
import pyarrow.parquet as pq

from extractors.base import Manifest
from extractors.http_api import LANDING_SCHEMA
from tthc.config import load_settings
from transforms.canonicalize import canonical_dossiers


def record(dossier_id, **overrides):
    base = {"MaHoSo": dossier_id, "MaTTHC": "1.0001", "MaLinhVuc": "HT", "MaCoQuan": "01279",
            "KenhThucHien": "2", "NgayTiepNhan": "20240402080000", "NgayHenTra": "20240410170000",
            "NgayKetThucXuLy": None, "NgayTra": None, "NgayCapNhat": "20240402080000", "TrangThaiHoSo": "4",
            "PhiLePhi": "0", "DuocThanhToanTrucTuyen": None,
            "DanhSachGiayToKetQua": json.dumps([{"TenGiayTo": "x", "DuocSoHoa": 1}])}
    return base | overrides


def test_portal_records_become_canonical_and_bad_values_are_reported(tmp_path):
    settings = load_settings()
    period = settings.period("2024-Q2")
    folder = tmp_path / "landing" / period.label / "portal_dvc"
    folder.mkdir(parents=True)
    rows = [record("A"), record("B", KenhThucHien=None, TrangThaiHoSo="10", NgayKetThucXuLy="20240405100000",
                                DuocThanhToanTrucTuyen="1", DanhSachGiayToKetQua="[]"),
            record("C", NgayTiepNhan="2024-04-02", TrangThaiHoSo="42"),
            record("A", NgayCapNhat="20240403080000", TrangThaiHoSo="9", NgayKetThucXuLy="20240403080000")]
    pq.write_table(pa.Table.from_pylist(rows, schema=LANDING_SCHEMA), folder / "dossiers.parquet")
    manifest = Manifest("portal_dvc", "http_api", period.as_dict(), "ok", "", "r",
                        files=[{"path": "dossiers.parquet", "rows": 4, "sha256": ""}], rows=4)
    out = tmp_path / "dossiers.parquet"
    count, findings = canonical_dossiers({"portal_dvc": manifest}, settings, tmp_path, period, out)
    table = {r["dossier_id"]: r for r in pq.read_table(out).to_pylist()}
    assert count == 3  # the later update of A replaced the earlier one
    assert (table["A"]["status"], str(table["A"]["finished_at"])) == (9, "2024-04-03 08:00:00")
    assert (table["A"]["channel"], table["A"]["results_digitised"]) == ("online", True)
    assert (table["B"]["channel"], table["B"]["paid_online"], table["B"]["results_digitised"]) == ("in_person", True, False)
    assert table["C"]["received_at"] is None and table["C"]["status"] is None
    problems = {f.columns[0]: f for f in findings}
    assert set(problems) == {"status", "received_at"}
    assert "C='42'" in problems["status"].message and "C='2024-04-02'" in problems["received_at"].message
    assert all(f.source_id == "portal_dvc" and f.severity == "warning" for f in findings)
