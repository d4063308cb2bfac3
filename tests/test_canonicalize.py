"""Landed portal records → canonical dossiers, with values that cannot be read."""
import json

import pyarrow as pa
import pyarrow.parquet as pq

from extractors.registry import landed_source
from tthc.landing import Manifest
from tthc.portal import LANDING_SCHEMA
from tthc.config import load_settings
from tthc.model import has_unique_dossier_key
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
    count, findings = canonical_dossiers([landed_source(settings.source("portal_dvc"), period, tmp_path, manifest)],
                                         period, out)
    table = {r["dossier_id"]: r for r in pq.read_table(out).to_pylist()}
    assert count == 3  # the later update of A replaced the earlier one
    assert has_unique_dossier_key(pq.read_schema(out))
    assert (table["A"]["status"], str(table["A"]["finished_at"])) == (9, "2024-04-03 08:00:00")
    assert (table["A"]["channel"], table["A"]["results_digitised"]) == ("online", True)
    assert (table["B"]["channel"], table["B"]["paid_online"], table["B"]["results_digitised"]) == ("in_person", True, False)
    assert table["C"]["received_at"] is None and table["C"]["status"] is None
    problems = {f.columns[0]: f for f in findings}
    assert set(problems) == {"status", "received_at"}
    assert "C='42'" in problems["status"].message and "C='2024-04-02'" in problems["received_at"].message
    assert all(f.source_id == "portal_dvc" and f.severity == "warning" for f in findings)


def test_records_in_order_stream_once_with_the_findings_of_the_fallback(tmp_path):
    """Landings ordered by dossier id go through in one streamed pass; the same records out of
    order go through the window and a pass of their own for the checks. Both give the same
    dossiers, findings (examples: the first dossier ids) and ids listed under several units."""
    settings = load_settings()
    period = settings.period("2024-Q2")
    rows = [record(f"D{i:03d}") for i in range(40)]
    rows[3] |= {"NgayTiepNhan": "hôm qua"}
    rows[5] |= {"PhiLePhi": "năm chục"}
    rows[7] |= {"NgayCapNhat": "20991231000000"}  # after the run: a date in the future
    for i in (9, 11, 13, 15, 17, 19, 21):
        rows[i] |= {"TrangThaiHoSo": "77"}  # more than the examples shown
    rows.insert(21, record("D020", MaCoQuan="01281", NgayCapNhat="20240405080000"))  # one dossier, two units
    rows.insert(31, record("D030", NgayCapNhat="20240401080000"))  # an older update, same unit
    results = []
    for name, landed in (("in_order", rows), ("out_of_order", rows[::-1])):
        folder = tmp_path / name / "landing" / period.label / "portal_dvc"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(landed, schema=LANDING_SCHEMA), folder / "dossiers.parquet")
        manifest = Manifest("portal_dvc", "http_api", period.as_dict(), "ok", "", "r",
                            files=[{"path": "dossiers.parquet", "rows": len(landed), "sha256": ""}], rows=len(landed))
        out, several = tmp_path / name / "dossiers.parquet", tmp_path / name / "several.parquet"
        landed = [landed_source(settings.source("portal_dvc"), period, tmp_path / name, manifest)]
        count, findings = canonical_dossiers(landed, period, out,
                                             several_units_out=several)
        results.append((count, pq.read_table(out), [(f.check_id, f.columns, f.observed, f.message) for f in findings],
                        pq.read_table(several).to_pylist()))
    (count, table, findings, several), fallback = results
    assert count == 40 and table.equals(fallback[1]) and findings == fallback[2] and several == fallback[3]
    assert table.column("dossier_id").to_pylist() == sorted(table.column("dossier_id").to_pylist())
    assert table.to_pylist()[20]["unit_code"] == "01281"  # the later update won
    assert several == [{"source_id": "portal_dvc", "dossier_id": "D020"}]
    observed = {(check, columns[0]): int(n) for check, columns, n, _ in findings}
    assert observed == {("records.unreadable_value", "received_at"): 1, ("records.unreadable_value", "fee_amount"): 1,
                        ("records.unreadable_value", "status"): 7, ("records.date_in_future", "updated_at"): 1}
    status = next(m for check, columns, _, m in findings if columns == ["status"])
    assert "D009='77', D011='77', D013='77', D015='77', D017='77'" in status and "D019" not in status
