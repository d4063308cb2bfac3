"""Vendor presets (config/vendors/): the entry merged over its preset, and the two real
one-stop-shop systems read as they are (../shared/vendors.md): Tân Dân on PostgreSQL (schemas
Business and Catalog, soft deletes, a unit id without a Groups row, local times, a timestamptz
column), OpenCPS on MariaDB (UTC times, status words, online_/fromViaPostal, the field of work
from opencps_serviceinfo, the province's unit-id CSV), and Tân Dân on SQLite through `attach`.
Each database test makes its own database and drops it; figures are derived by the pipeline's
code and compared unit by unit with figures counted by hand below."""
import json
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from extractors.agency_db import TimeShift, landing_schema
from extractors.base import SourceDataError
from extractors.registry import extract_source, landed_source
from tests.conftest import REPO, require_service
from transforms.canonicalize import canonical_dossiers
from transforms.derive import derive_figures
from tthc.config import ConfigError, Settings
from tthc.landing import Manifest

PERIOD = "2025-Q2"
NOW = datetime(2026, 1, 1)
FIGURES = ("received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
           "resolved_early", "resolved_on_time", "resolved_late", "pending_total", "pending_within_due",
           "pending_overdue", "returned_withdrawn")


def settings_with(tmp_path: Path, *entries: dict) -> Settings:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": list(entries)}, allow_unicode=True), encoding="utf-8")
    return Settings(province_file=REPO / "config" / "province.yaml", sources_file=path)


def figures(**given) -> dict:
    return {name: given.get(name, 0) for name in FIGURES}


def extract_and_derive(settings: Settings, source_id: str, var: Path, tmp_path: Path):
    """The pipeline's own path: extract → landing → canonicalize → derive. Returns the derived
    figures by (unit, field), the canonical dossiers by id, the findings and the landed table."""
    source, period = settings.source(source_id), settings.period(PERIOD)
    manifest = Manifest.read(extract_source(source, period, var, "run", settings))
    landed = landed_source(source, period, var, manifest)
    dossiers, derived = tmp_path / "dossiers.parquet", tmp_path / "derived.parquet"
    _, findings = canonical_dossiers([landed], period, dossiers, now=NOW)
    derive_figures(dossiers, period, derived)
    rows = {(r["unit_code"], r["field_code"]): {k: r[k] for k in FIGURES} for r in pq.read_table(derived).to_pylist()}
    canon = {r["dossier_id"]: r for r in pq.read_table(dossiers).to_pylist()}
    return rows, canon, findings, pq.read_table(landed.path)


# ------------------------------------------------------------------ the entry over its preset

def test_an_entry_is_its_preset_with_its_own_keys_winning(tmp_path):
    settings = settings_with(tmp_path, {
        "id": "dvc_tandan", "kind": "agency_db", "preset": "tandan", "connection_id": "tthc_dvc_tandan",
        "covers": [{"level": "department"}],
        "columns": {"updated_at": "CreatedOn", "paid_online": None},  # replaced, removed
        "mapping": {"channel": {3: "in_person"}},  # written 3, the preset writes "3": one key
    })
    spec = settings.source("dvc_tandan").spec
    assert (spec["schema"], spec["table"], spec["stored_timezone"]) == ("Business", "HoSos", "Asia/Ho_Chi_Minh")
    assert spec["columns"]["updated_at"] == "CreatedOn" and "paid_online" not in spec["columns"]
    assert spec["columns"]["unit_code"] == "DonViId" and spec["lookups"]["unit_code"]["value"] == "MaDinhDanh"
    assert spec["mapping"]["channel"] == {"1": "in_person", "2": "online", 3: "in_person", None: "in_person"}
    assert spec["filters"] == [{"column": "DeletedOn", "is_null": True}]
    assert spec["connection_id"] == "tthc_dvc_tandan" and "ChuHoSo" in spec["personal_data"]
    opencps = yaml.safe_load((REPO / "config" / "vendors" / "opencps.yaml").read_text(encoding="utf-8"))
    assert opencps["stored_timezone"] == "UTC" and "schema" not in opencps
    assert opencps["lookups"]["field_code"]["table"] == "opencps_serviceinfo"


@pytest.mark.parametrize("preset, message", [("vnpt", "unknown preset 'vnpt'"), ("../province", "must match")])
def test_an_unknown_preset_names_the_file_and_the_source(tmp_path, preset, message):
    settings = settings_with(tmp_path, {"id": "dvc_x", "kind": "agency_db", "preset": preset})
    with pytest.raises(ConfigError, match=message) as caught:
        _ = settings.sources
    assert str(tmp_path / "sources.yaml") in str(caught.value) and "'dvc_x'" in str(caught.value)


def test_a_preset_may_not_say_which_source_it_is(tmp_path, monkeypatch):
    (tmp_path / "vendors").mkdir()
    (tmp_path / "vendors" / "mine.yaml").write_text("table: t\ncovers: []\n", encoding="utf-8")
    monkeypatch.setenv("TTHC_VENDORS_DIR", str(tmp_path / "vendors"))
    with pytest.raises(ConfigError, match=r"mine.yaml: .*\['covers'\]"):
        _ = settings_with(tmp_path, {"id": "dvc_x", "kind": "agency_db", "preset": "mine"}).sources


# ------------------------------------------------------------------ the canonical select

def test_columns_an_entry_does_not_give_are_null(tmp_path):
    """The Tân Dân preset has no fee column: fee_amount is NULL, not a failure; landed codes
    are mapped by the preset's mapping."""
    settings = settings_with(tmp_path, {"id": "dvc_tandan", "kind": "agency_db", "preset": "tandan",
                                        "connection_id": "tthc_dvc_tandan",
                                        "columns": {"paid_online": None, "results_digitised": None}})
    source, period = settings.source("dvc_tandan"), settings.period(PERIOD)
    folder = tmp_path / "landing" / period.label / source.id
    folder.mkdir(parents=True)
    landed = pa.table({"dossier_id": ["A", "B"], "procedure_code": ["1.1", "1.1"], "field_code": ["TP", "TP"],
                       "unit_code": ["000.00.10.H04", "g-9"], "channel": ["3", None],
                       "received_at": ["2025-04-02 08:00:00", "2025-04-03 08:00:00"],
                       "due_at": [None, None], "finished_at": [None, None], "returned_at": [None, None],
                       "paused_at": [None, None], "status": ["4", "2"], "updated_at": [None, None],
                       "entered_at": [None, None]})
    assert landed.schema.names == [f.name for f in landing_schema(source)]
    pq.write_table(landed, folder / "dossiers.parquet")
    manifest = Manifest(source.id, "agency_db", period.as_dict(), "ok", "", "r",
                        files=[{"path": "dossiers.parquet", "rows": 2, "sha256": ""}], rows=2)
    out = tmp_path / "dossiers.parquet"
    count, findings = canonical_dossiers([landed_source(source, period, tmp_path, manifest)], period, out, now=NOW)
    rows = {r["dossier_id"]: r for r in pq.read_table(out).to_pylist()}
    assert count == 2 and findings == []
    assert (rows["A"]["channel"], rows["A"]["status"], rows["A"]["fee_amount"]) == ("postal", 4, None)
    assert (rows["B"]["channel"], rows["B"]["paid_online"], rows["B"]["results_digitised"]) == ("in_person", None, None)


def test_times_become_the_local_wall_clock():
    utc = TimeShift("UTC", "Asia/Ho_Chi_Minh", None, "x")
    assert utc(datetime(2025, 3, 31, 20)) == datetime(2025, 4, 1, 3)
    assert utc.to_stored(datetime(2025, 4, 1)) == datetime(2025, 3, 31, 17)
    local = TimeShift(None, "Asia/Ho_Chi_Minh", "%Y-%m-%d %H:%M:%S", "x")
    assert local("2025-04-01 03:00:00") == "2025-04-01 03:00:00"  # text on the local clock: untouched
    assert local("2025-03-31 20:00:00+00:00") == "2025-04-01 03:00:00"  # an offset: converted by it
    assert local("không rõ") == "không rõ"
    aware = datetime.fromisoformat("2025-04-02T01:00:00+00:00")
    assert local(aware) == datetime(2025, 4, 2, 8)
    with pytest.raises(SourceDataError, match="Mars/Olympus"):
        TimeShift("Mars/Olympus", "Asia/Ho_Chi_Minh", None, "x")


# ------------------------------------------------------------------ Tân Dân

GROUPS = [("a3f0c1e2-0001", "000.00.10.H04", "Sở Tư pháp"), ("a3f0c1e2-0002", "000.00.11.H04", "Sở Xây dựng")]
SOTP, SOXD, UNKNOWN = GROUPS[0][0], GROUPS[1][0], "b9e7-no-group"


def tandan_rows() -> list[dict]:
    """Dossiers of Business.HoSos, times on the local clock. Counted by hand for 2025-Q2 in TANDAN_Q2."""
    def row(code, unit, channel, status, received, due=None, finished=None, field="TP", deleted=None, **more):
        return {"Id": str(uuid.uuid4()), "DonViId": unit, "MaHoSo": code, "KenhThucHien": channel, "MaTTHC": "1.0001",
                "MaLinhVuc": field, "TenLinhVuc": "Tư pháp", "NgayNopHoSo": received, "NgayTiepNhan": received,
                "NgayHenTra": due, "NgayKetThucXuLy": finished, "NgayTra": finished, "NgayTuChoi": None,
                "NgayYeuCauBoSung": None, "TrangThaiHoSoId": status, "DuocThanhToanTrucTuyen": "0",
                "DaSoHoaKetQua": True, "ChuHoSo": f"Nguyễn Văn Riêng {code}", "SoGiayToChuHoSo": f"0012{code[-4:]}99",
                "SoDienThoaiChuHoSo": "0912345678", "EmailChuHoSo": "rieng@example.vn",
                "DiaChiChuHoSo": "12 ngõ Kín", "CreatedOn": received, "LastModifiedOn": more.get("modified"),
                "DeletedOn": deleted}
    d = datetime
    return [
        row("TD-0001", SOTP, "2", "4", d(2025, 4, 2, 8), due=d(2025, 4, 20, 17)),                    # online, overdue
        row("TD-0002", SOTP, "1", "10", d(2025, 4, 3, 8), due=d(2025, 4, 10, 17), finished=d(2025, 4, 5, 9),
            modified=d(2025, 4, 5, 3)),                                                              # early
        row("TD-0003", SOTP, "3", "9", d(2025, 4, 4, 8), due=d(2025, 4, 10, 17), finished=d(2025, 4, 10, 9)),  # on time
        row("TD-0004", SOTP, "2", "4", d(2025, 4, 5, 8), due=d(2025, 4, 20, 17), deleted=d(2025, 4, 6, 2)),  # deleted
        row("TD-0005", SOXD, None, "4", d(2025, 3, 20, 8), due=d(2025, 7, 15, 17), field="XD"),       # carried over
        row("TD-0006", SOXD, "2", "10", d(2025, 5, 1, 8), due=d(2025, 5, 5, 17), finished=d(2025, 5, 10, 9),
            field="XD"),                                                                             # late
        row("TD-0007", UNKNOWN, "1", "4", d(2025, 5, 2, 8), due=d(2025, 8, 1, 17), field="XD"),        # no Groups row
        row("TD-0008", SOTP, "1", "10", d(2025, 2, 1, 8), due=d(2025, 2, 10, 17), finished=d(2025, 3, 1, 9)),  # Q1
        row("TD-0009", SOTP, "1", "3", d(2025, 4, 6, 8)),                                              # not taken on
        row("TD-0010", SOXD, "1", "10", d(2025, 3, 25, 8), due=d(2025, 4, 5, 17), finished=d(2025, 4, 2, 9),
            field="XD", deleted=d(2025, 4, 3, 1)),                                                   # deleted
    ]


TANDAN_Q2 = {
    ("000.00.10.H04", "TP"): figures(received_total=3, received_online=1, received_direct_postal=2, resolved_total=2,
                                     resolved_early=1, resolved_on_time=1, pending_total=1, pending_overdue=1),
    ("000.00.11.H04", "XD"): figures(received_total=2, received_online=1, carried_over=1, resolved_total=1,
                                     resolved_late=1, pending_total=1, pending_within_due=1),
    (UNKNOWN, "XD"): figures(received_total=1, received_direct_postal=1, pending_total=1, pending_within_due=1),
}


def tandan_tables(metadata: sa.MetaData, business: str | None, catalog: str | None, text_dates=False):
    when = sa.String(27) if text_dates else sa.DateTime()
    hosos = sa.Table(
        "HoSos", metadata, sa.Column("Id", sa.String(36) if text_dates else sa.Uuid, primary_key=True),
        sa.Column("DonViId", sa.String(50)), sa.Column("MaHoSo", sa.Unicode(50)), sa.Column("KenhThucHien", sa.String(2)),
        sa.Column("MaTTHC", sa.String(50)), sa.Column("MaLinhVuc", sa.Unicode(50)), sa.Column("TenLinhVuc", sa.Unicode(500)),
        *[sa.Column(n, when) for n in ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra",
                                       "NgayTuChoi", "NgayYeuCauBoSung")],
        sa.Column("TrangThaiHoSoId", sa.String(5)), sa.Column("DuocThanhToanTrucTuyen", sa.String(2)),
        sa.Column("DaSoHoaKetQua", sa.Boolean),
        *[sa.Column(n, sa.Unicode(200)) for n in ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoaiChuHoSo", "EmailChuHoSo",
                                                  "DiaChiChuHoSo")],
        sa.Column("CreatedOn", when),
        # a province's copy with a timestamptz column: its instants must survive the session's zone
        sa.Column("LastModifiedOn", when if text_dates else sa.DateTime(timezone=True)),
        sa.Column("DeletedOn", when), schema=business)
    groups = sa.Table("Groups", metadata, sa.Column("GroupCode", sa.String(36), primary_key=True),
                      sa.Column("MaDinhDanh", sa.String(20)), sa.Column("GroupName", sa.Unicode(200)), schema=catalog)
    return hosos, groups


def tandan_entry(**more) -> dict:
    return {"id": "dvc_tandan", "kind": "agency_db", "preset": "tandan", "connection_id": "tthc_dvc_tandan",
            "chunk_size": 3, "covers": [{"level": "department", "complete": True}], **more}


def check_tandan(rows, canon, findings, landed):
    assert rows == TANDAN_Q2
    assert "TD-0004" not in canon and "TD-0010" not in canon  # soft-deleted: not landed
    assert canon["TD-0007"]["unit_code"] == UNKNOWN  # no Groups row: the vendor's id, kept
    assert canon["TD-0005"]["channel"] == "in_person" and canon["TD-0003"]["channel"] == "postal"
    assert all(r["fee_amount"] is None for r in canon.values())
    text = landed.to_pandas().to_csv()
    assert not any(word in text for word in ("Riêng", "ngõ Kín", "0912345678", "rieng@"))
    assert findings == []


def test_tandan_on_postgresql(tmp_path, var, monkeypatch):
    require_service("PostgreSQL", 5432, "sudo service postgresql start (trust auth for postgres on 127.0.0.1)")
    name = f"tthc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")  # name made here from hex digits
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql('CREATE SCHEMA "Business"')
            conn.exec_driver_sql('CREATE SCHEMA "Catalog"')
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET timezone TO 'America/New_York'")  # a session zone far away
        metadata = sa.MetaData()
        hosos, groups = tandan_tables(metadata, "Business", "Catalog")
        metadata.create_all(engine)
        rows = tandan_rows()
        for r in rows:
            r["Id"] = uuid.UUID(r["Id"])
            if r["LastModifiedOn"] is not None:  # an instant in UTC: 03:00 UTC is 10:00 in Vietnam
                r["LastModifiedOn"] = r["LastModifiedOn"].replace(tzinfo=timezone.utc)
        with engine.begin() as conn:
            conn.execute(hosos.insert(), rows)
            conn.execute(groups.insert(), [dict(zip(("GroupCode", "MaDinhDanh", "GroupName"), g)) for g in GROUPS])
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_DVC_TANDAN", json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}))
        settings = settings_with(tmp_path, tandan_entry())
        derived, canon, findings, landed = extract_and_derive(settings, "dvc_tandan", var, tmp_path)
        check_tandan(derived, canon, findings, landed)
        assert canon["TD-0002"]["updated_at"] == datetime(2025, 4, 5, 10)  # timestamptz: the instant, on local time
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def test_tandan_on_sqlite_with_attached_schemas(tmp_path, var, monkeypatch):
    """SQLite has no schemas: the connection's `attach` names the files Business and Catalog, so
    the same preset reads them; dates are text there (`date_format`, the entry's override)."""
    files = {"Business": tmp_path / "dvc.sqlite", "Catalog": tmp_path / "catalog.sqlite"}
    for path in files.values():
        sqlite3.connect(path).close()
    for alias, path in files.items():
        metadata = sa.MetaData()
        hosos, groups = tandan_tables(metadata, None, None, text_dates=True)
        engine = sa.create_engine(f"sqlite:///{path}")
        table = hosos if alias == "Business" else groups
        table.create(engine)
        with engine.begin() as conn:
            if alias == "Business":
                conn.execute(table.insert(), [{k: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v
                                               for k, v in r.items()} for r in tandan_rows()])
            else:
                conn.execute(table.insert(), [dict(zip(("GroupCode", "MaDinhDanh", "GroupName"), g)) for g in GROUPS])
        engine.dispose()
    conn = {"conn_type": "sqlite", "host": str(files["Business"]),
            "extra": {"attach": {alias: str(path) for alias, path in files.items()}}}
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_DVC_TANDAN", json.dumps(conn))
    settings = settings_with(tmp_path, tandan_entry(date_format="%Y-%m-%d %H:%M:%S"))
    check_tandan(*extract_and_derive(settings, "dvc_tandan", var, tmp_path))

    conn["extra"]["attach"] = {'x"; DETACH main; --': str(files["Catalog"])}
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_DVC_TANDAN", json.dumps(conn))
    with pytest.raises(SourceDataError, match="attached database alias"):
        extract_source(settings.source("dvc_tandan"), settings.period(PERIOD), var, "run", settings)


# ------------------------------------------------------------------ OpenCPS

UNIT_IDS = "govAgencyCode,unit_code\nSTP,000.00.10.H04\nUBND_XA,01279\n"


def opencps_rows() -> list[dict]:
    """opencps_dossier rows, times in UTC as Liferay writes them. Counted by hand in OPENCPS_Q2."""
    def row(no, agency, service, status, received, online=0, postal=0, due=None, released=None, **more):
        return {"dossierId": 1000 + int(no[-3:]), "groupId": 35417, "companyId": 20099, "createDate": received,
                "modifiedDate": released or received, "govAgencyCode": agency, "govAgencyName": agency,
                "serviceCode": service, "serviceName": service, "dossierNo": no, "submitDate": received,
                "receiveDate": received, "dueDate": due, "extendDate": None, "releaseDate": released,
                "finishDate": more.get("finished"), "cancellingDate": None, "dossierStatus": status,
                "dossierSubStatus": "", "online_": online, "viaPostal": 0, "fromViaPostal": postal, "originality": 3,
                "applicantName": f"Lê Thị Bí Mật {no}", "applicantIdNo": f"0381{no[-3:]}55", "address": "9 hẻm Kín",
                "contactName": "Lê Thị Bí Mật", "contactTelNo": "0987000111", "contactEmail": "bimat@example.vn"}
    d = datetime
    return [
        # 20:00 UTC on 31 March is 03:00 on 1 April in Vietnam: received in Q2
        row("OC-001", "STP", "S1", "processing", d(2025, 3, 31, 20), online=1, due=d(2025, 4, 10, 1)),
        # 10:00 UTC on 31 March is 17:00 the same day: carried over; released 09:00 on 2 April, due 16:00 on 1 April
        row("OC-002", "STP", "S1", "done", d(2025, 3, 31, 10), online=1, due=d(2025, 4, 1, 9),
            released=d(2025, 4, 2, 2), finished=d(2025, 4, 3, 2)),
        row("OC-003", "STP", "S2", "releasing", d(2025, 4, 3, 2), online=0, postal=1, due=d(2025, 4, 8, 9),
            released=d(2025, 4, 5, 3)),                                                     # by post, early
        row("OC-004", "UBND_XA", "S1", "waiting", d(2025, 5, 10, 1), due=d(2025, 7, 20, 9)),  # in person, paused
        # 18:00 UTC on 30 June is 01:00 on 1 July: not in Q2
        row("OC-005", "SXD", "S2", "processing", d(2025, 6, 30, 18), online=1, due=d(2025, 7, 20, 9)),
        # a unit the province's table does not list: kept as the vendor's code; released on the due day
        row("OC-006", "SXD", "S2", "done", d(2025, 6, 1, 3), online=1, due=d(2025, 6, 3, 9), released=d(2025, 6, 3, 2),
            finished=d(2025, 6, 3, 4)),
        row("OC-007", "STP", "S9", "processing", d(2025, 4, 15, 2), online=1, due=d(2025, 9, 1, 9)),  # no serviceinfo
        row("OC-008", "STP", "S1", "denied", d(2025, 4, 20, 2), online=1),                      # not taken on
        row("OC-009", "STP", "S1", "done", d(2025, 1, 5, 2), due=d(2025, 1, 10, 9), released=d(2025, 1, 8, 2)),  # Q1
    ]


SERVICES = [  # serviceCode → domainCode within the site; another site's S1 must not be joined
    {"serviceInfoId": 1, "groupId": 35417, "serviceCode": "S1", "serviceName": "s1", "domainCode": "TP"},
    {"serviceInfoId": 2, "groupId": 35417, "serviceCode": "S2", "serviceName": "s2", "domainCode": "XD"},
    {"serviceInfoId": 3, "groupId": 99999, "serviceCode": "S1", "serviceName": "s1", "domainCode": "KHAC"},
]

OPENCPS_Q2 = {
    ("000.00.10.H04", "TP"): figures(received_total=2, received_online=1, carried_over=1, resolved_total=1,
                                     resolved_late=1, pending_total=1, pending_overdue=1),
    ("000.00.10.H04", "XD"): figures(received_total=1, received_direct_postal=1, resolved_total=1, resolved_early=1),
    ("000.00.10.H04", ""): figures(received_total=1, received_online=1, pending_total=1, pending_within_due=1),
    ("01279", "TP"): figures(received_total=1, received_direct_postal=1, pending_total=1, pending_within_due=1),
    ("SXD", "XD"): figures(received_total=1, received_online=1, resolved_total=1, resolved_on_time=1),
}


def test_opencps_on_mariadb(tmp_path, var, monkeypatch):
    require_service("MariaDB", 3306, "sudo service mariadb start (root without password on 127.0.0.1)")
    name = f"tthc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")  # name made here from hex digits
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{name}")
    try:
        metadata = sa.MetaData()
        dossier = sa.Table(
            "opencps_dossier", metadata, sa.Column("dossierId", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("groupId", sa.BigInteger), sa.Column("companyId", sa.BigInteger),
            sa.Column("createDate", sa.DateTime), sa.Column("modifiedDate", sa.DateTime),
            sa.Column("govAgencyCode", sa.String(128)), sa.Column("govAgencyName", sa.String(512)),
            sa.Column("serviceCode", sa.String(128)), sa.Column("serviceName", sa.Text),
            sa.Column("dossierNo", sa.String(255)),
            *[sa.Column(n, sa.DateTime) for n in ("submitDate", "receiveDate", "dueDate", "extendDate", "releaseDate",
                                                  "finishDate", "cancellingDate")],
            sa.Column("dossierStatus", sa.String(255)), sa.Column("dossierSubStatus", sa.String(128)),
            sa.Column("online_", sa.SmallInteger), sa.Column("viaPostal", sa.Integer),
            sa.Column("fromViaPostal", sa.Integer), sa.Column("originality", sa.Integer),
            sa.Column("applicantName", sa.String(255)), sa.Column("applicantIdNo", sa.String(128)),
            sa.Column("address", sa.Text), sa.Column("contactName", sa.String(255)),
            sa.Column("contactTelNo", sa.String(255)), sa.Column("contactEmail", sa.String(255)))
        services = sa.Table(
            "opencps_serviceinfo", metadata, sa.Column("serviceInfoId", sa.BigInteger, primary_key=True),
            sa.Column("groupId", sa.BigInteger), sa.Column("serviceCode", sa.String(128)),
            sa.Column("serviceName", sa.Text), sa.Column("domainCode", sa.String(128)))
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE opencps_dossier MODIFY online_ TINYINT")  # Liferay's BOOLEAN
            conn.execute(dossier.insert(), opencps_rows())
            conn.execute(services.insert(), SERVICES)
        unit_ids = tmp_path / "unit_ids.csv"
        unit_ids.write_text(UNIT_IDS, encoding="utf-8")
        # the entry names the file in config/; the deployment points the variable at its copy
        monkeypatch.setenv("TTHC_SOURCE_DVC_OPENCPS_LOOKUP_UNIT_CODE", str(unit_ids))
        monkeypatch.setenv("AIRFLOW_CONN_TTHC_DVC_OPENCPS", json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": name}))
        settings = settings_with(tmp_path, {
            "id": "dvc_opencps", "kind": "agency_db", "preset": "opencps", "connection_id": "tthc_dvc_opencps",
            "chunk_size": 4, "covers": [{"level": "department", "complete": True}],
            "lookups": {"unit_code": {"file": "config/unit_ids/dvc_opencps.csv", "key": "govAgencyCode",
                                      "value": "unit_code"}}})
        derived, canon, findings, landed = extract_and_derive(settings, "dvc_opencps", var, tmp_path)
        assert derived == OPENCPS_Q2
        assert canon["OC-001"]["received_at"] == datetime(2025, 4, 1, 3)  # UTC → local wall clock
        assert "OC-005" not in canon  # 1 July local time
        assert canon["OC-003"]["channel"] == "postal" and canon["OC-003"]["status"] == 9
        assert canon["OC-006"]["unit_code"] == "SXD" and canon["OC-007"]["field_code"] is None
        assert canon["OC-008"]["status"] == 3
        assert findings == []
        text = landed.to_pandas().to_csv()
        assert not any(word in text for word in ("Bí Mật", "hẻm Kín", "0987000111", "bimat@"))
        assert "fee_amount" not in landed.schema.names
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()
