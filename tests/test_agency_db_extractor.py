"""The agency database extractor against real MariaDB, PostgreSQL and SQLite. Each test
creates its own database with the vendor's table (personal-data columns included) and drops
it. Under CI=true a missing server fails; elsewhere the test skips saying how to start it."""
import json
import sqlite3
import uuid
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tthc.landing import Manifest
from extractors.registry import extract_source
from tthc.config import Source, load_settings
from tests.conftest import require_service

pytestmark = pytest.mark.services
PERIOD = "2024-Q2"
START = datetime(2024, 3, 20, 8)


def vendor_rows() -> list[dict]:
    """150 dossiers: received from 20 March to late July, a third finished in March."""
    rows = []
    for i in range(150):
        received = START + timedelta(hours=20 * i)
        finished = received + timedelta(days=2) if i % 3 == 0 else None
        rows.append({
            "id": i + 1, "so_hs": f"XD-{i:05d}", "ma_tthc": "2.001", "linh_vuc": "XD", "don_vi": "000.00.07.H04",
            "hinh_thuc": ["TRUCTIEP", "TRUCTUYEN", "BUUCHINH", None][i % 4], "ngay_nhan": received,
            "han_tra": received + timedelta(days=10), "ngay_xong": finished, "ngay_tra": None,
            "trang_thai": "XONG" if finished else "DANG_XL", "le_phi": 50000 * (i % 2), "tt_online": i % 2,
            "so_hoa_kq": 1, "cap_nhat": (finished or received) + timedelta(hours=1),
            "nguoi_nop": f"Trần Thị Kín{i}", "cccd": f"0011{i:08d}", "sdt": f"0987{i:06d}", "dia_chi": f"{i} ngõ Riêng",
        })
    return rows


def expected_ids(rows) -> set[str]:
    start, end = datetime(2024, 4, 1), datetime(2024, 7, 1)
    return {r["so_hs"] for r in rows if r["ngay_nhan"] < end and (r["ngay_xong"] is None or r["ngay_xong"] >= start)}


def vendor_table(metadata: sa.MetaData, text_dates: bool) -> sa.Table:
    when = sa.String(19) if text_dates else sa.DateTime()
    return sa.Table(
        "hs_hoso", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("so_hs", sa.String(40)),
        *[sa.Column(n, sa.String(40)) for n in ("ma_tthc", "linh_vuc", "don_vi", "hinh_thuc")],
        *[sa.Column(n, when) for n in ("ngay_nhan", "han_tra", "ngay_xong", "ngay_tra")],
        sa.Column("trang_thai", sa.String(10)), sa.Column("le_phi", sa.BigInteger),
        sa.Column("tt_online", sa.Integer), sa.Column("so_hoa_kq", sa.Integer), sa.Column("cap_nhat", when),
        *[sa.Column(n, sa.String(80)) for n in ("nguoi_nop", "cccd", "sdt", "dia_chi")])


def fill(url: str, rows: list[dict], text_dates: bool) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = vendor_table(metadata, text_dates)
    metadata.create_all(engine)
    if text_dates:
        rows = [{k: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v for k, v in r.items()} for r in rows]
    with engine.begin() as conn:
        conn.execute(sa.delete(table))
        conn.execute(table.insert(), rows)
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def database(request, tmp_path, monkeypatch):
    """(connection JSON, SQLAlchemy URL for writing, whether dates are text) of a fresh database."""
    name = f"tthc_test_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        path = tmp_path / "agency.sqlite"
        sqlite3.connect(path).close()
        yield {"conn_type": "sqlite", "host": str(path)}, f"sqlite:///{path}", True
        return
    if request.param == "mariadb":
        require_service("MariaDB", 3306, "sudo service mariadb start (root without password on 127.0.0.1)")
        admin_url, url = "mysql+pymysql://root@127.0.0.1:3306/", f"mysql+pymysql://root@127.0.0.1:3306/{name}"
        conn = {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": name}
        create, drop = f"CREATE DATABASE {name} CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS {name}"
    else:
        require_service("PostgreSQL", 5432, "sudo service postgresql start (trust auth for postgres on 127.0.0.1)")
        admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
        create, drop = f"CREATE DATABASE {name}", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(create)  # name made here from hex digits, not from data
    try:
        yield conn, url, False
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(drop)
        admin.dispose()


def run(var, conn: dict, monkeypatch, text_dates: bool, **spec):
    monkeypatch.setenv("AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT", json.dumps(conn))
    settings = load_settings()
    registry = dict(settings.source("agency_db_xd_tnmt").spec)
    if not text_dates:
        registry.pop("date_format")
    source = Source("agency_db_xd_tnmt", "agency_db", {**registry, "chunk_size": 40, **spec})
    path = extract_source(source, settings.period(PERIOD), var, "run", settings)
    manifest = Manifest.read(path)
    return manifest, pq.read_table(path.parent / manifest.files[0]["path"])


def test_the_period_window_in_chunks_without_personal_data(database, var, monkeypatch):
    conn, url, text_dates = database
    rows = vendor_rows()
    fill(url, rows, text_dates)
    manifest, table = run(var, conn, monkeypatch, text_dates)
    got = table.column("dossier_id").to_pylist()
    assert set(got) == expected_ids(rows) and len(got) == len(expected_ids(rows)) == 120
    assert table.num_rows == manifest.rows
    text = table.to_pandas().to_csv()
    assert not any(r[k] in text for r in rows for k in ("nguoi_nop", "cccd", "sdt", "dia_chi"))
    assert manifest.stats["max_updated_at"].startswith("2024-07-")
    again, _ = run(var, conn, monkeypatch, text_dates)
    assert again.files == manifest.files


def test_incremental_extraction_merges_updates_by_id(database, var, monkeypatch):
    conn, url, text_dates = database
    rows = vendor_rows()
    fill(url, rows, text_dates)
    first, _ = run(var, conn, monkeypatch, text_dates, incremental={"overlap_minutes": 60})
    newest = datetime.fromisoformat(first.stats["max_updated_at"])
    rows[40].update(trang_thai="BO_SUNG", cap_nhat=newest + timedelta(hours=3))
    rows.append({**rows[41], "id": 999, "so_hs": "XD-99999", "ngay_nhan": datetime(2024, 6, 30, 9),
                 "ngay_xong": None, "cap_nhat": newest + timedelta(hours=4)})
    fill(url, rows, text_dates)
    second, table = run(var, conn, monkeypatch, text_dates, incremental={"overlap_minutes": 60})
    assert second.stats["mode"] == "incremental" and second.stats["delta_rows"] == 3
    by_id = {r["dossier_id"]: r for r in table.to_pylist()}
    assert set(by_id) == expected_ids(rows) and table.num_rows == 121
    assert by_id[rows[40]["so_hs"]]["status"] == "BO_SUNG"


def test_a_registry_that_maps_a_personal_data_column_is_refused(database, var, monkeypatch):
    conn, url, text_dates = database
    fill(url, vendor_rows()[:3], text_dates)
    columns = {**load_settings().source("agency_db_xd_tnmt").spec["columns"], "procedure_code": "cccd"}
    with pytest.raises(ValueError, match=r"personal-data columns \['cccd'\]"):
        run(var, conn, monkeypatch, text_dates, columns=columns)
