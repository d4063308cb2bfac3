from datetime import date, datetime, timezone

import pytest

from tthc.config import ConfigError, Settings, load_settings
from tthc.connections import MissingConnection, get_connection
from tthc.numbers import NotACount, parse_count
from tthc.periods import cron_for, from_data_interval, interval_end, quarter


@pytest.mark.parametrize("label, convention, start, end", [
    ("2024-Q1", "calendar_quarter", date(2024, 1, 1), date(2024, 3, 31)),
    ("2024-Q4", "calendar_quarter", date(2024, 10, 1), date(2024, 12, 31)),
    ("2024-Q1", "decree_09_2019", date(2023, 12, 15), date(2024, 3, 14)),
    ("2021-Q3", "decree_09_2019", date(2021, 6, 15), date(2021, 9, 14)),
])
def test_quarter_dates_follow_the_convention(label, convention, start, end):
    period = quarter(label, convention)
    assert (period.start, period.end) == (start, end)


def test_previous_quarter_is_contiguous():
    for convention in ("calendar_quarter", "decree_09_2019"):
        period = quarter("2025-Q1", convention)
        previous = period.previous(convention)
        assert previous.label == "2024-Q4"
        assert (period.start - previous.end).days == 1


def test_bad_labels_and_conventions_say_what_was_expected():
    with pytest.raises(ValueError, match="expected a quarter label"):
        quarter("2024Q5", "calendar_quarter")
    with pytest.raises(ValueError, match="expected one of"):
        quarter("2024-Q1", "monthly")


def test_data_interval_gives_the_period_in_local_time():
    # Airflow hands the interval in UTC; Vietnam is UTC+7
    start = datetime(2025, 6, 30, 17, tzinfo=timezone.utc)
    end = datetime(2025, 9, 30, 17, tzinfo=timezone.utc)
    period = from_data_interval(start, end, "Asia/Ho_Chi_Minh")
    assert (period.start, period.end, period.label) == (date(2025, 7, 1), date(2025, 9, 30), "2025-Q3")
    with pytest.raises(ValueError, match="quarterly timetable"):
        from_data_interval(start, start, "Asia/Ho_Chi_Minh")


def test_timetable_infers_the_quarter_from_its_end():
    from airflow.timetables.interval import CronDataIntervalTimetable

    for convention in ("calendar_quarter", "decree_09_2019"):
        period = quarter("2024-Q3", convention)
        table = CronDataIntervalTimetable(cron_for(convention), timezone="Asia/Ho_Chi_Minh")
        interval = table.infer_manual_data_interval(run_after=interval_end(period, "Asia/Ho_Chi_Minh"))
        assert from_data_interval(interval.start, interval.end, "Asia/Ho_Chi_Minh") == period


@pytest.mark.parametrize("raw, value", [
    ("140.683", 140683), ("140. 683", 140683), (" 56 ", 56), (12, 12), (12.0, 12), ("", None), (None, None),
    ("1.234.567", 1234567), ("-", None),
])
def test_counts_written_the_vietnamese_way(raw, value):
    assert parse_count(raw) == value


@pytest.mark.parametrize("raw", ["12.5", "12,5", "1.23", "-3", "abc", 1.5, -1, True])
def test_values_that_are_not_counts_are_errors(raw):
    with pytest.raises(NotACount):
        parse_count(raw)


def test_settings_read_the_registry():
    settings = load_settings()
    assert settings.province_code == "04"
    assert {s.id: s.kind for s in settings.sources} == {
        "portal_dvc": "http_api", "agency_db_xd_tnmt": "agency_db", "commune_spreadsheets": "spreadsheet",
        "tandan_departments": "agency_db", "opencps_departments": "agency_db"}
    assert settings.period("2024-Q2").start == date(2024, 4, 1)


def test_a_broken_config_file_is_named(tmp_path):
    bad = tmp_path / "province.yaml"
    bad.write_text("province: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(bad)):
        _ = Settings(bad, tmp_path / "sources.yaml").province


def test_connections_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SOME_API", "http://user:s%40cret@api.example:8443/https?auth_type=basic")
    conn = get_connection("some_api")
    assert (conn.login, conn.password, conn.port, conn.extra["auth_type"]) == ("user", "s@cret", 8443, "basic")
    assert conn.base_url == "https://api.example:8443"
    assert "s@cret" not in repr(conn)
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", '{"conn_type": "sqlite", "host": "/tmp/x.db"}')
    assert get_connection("other").host == "/tmp/x.db"
    monkeypatch.delenv("AIRFLOW_CONN_MISSING_ONE", raising=False)
    with pytest.raises(MissingConnection, match="AIRFLOW_CONN_MISSING_ONE"):
        get_connection("missing_one")


def test_a_run_conf_asking_for_a_full_extraction_reaches_the_extractor(monkeypatch):
    from datetime import datetime, timezone
    from types import SimpleNamespace

    import extractors.registry
    from runner import pipeline
    from runner.dag_support import context_from_airflow

    calls = []
    monkeypatch.setattr(extractors.registry, "extract_source",
                        lambda source, period, var, run_id, settings, full=False, **_: calls.append(full) or var)
    start, end = datetime(2024, 3, 31, 17, tzinfo=timezone.utc), datetime(2024, 6, 30, 17, tzinfo=timezone.utc)
    for conf, expected in (({"full_extract": True, "reason": "period close"}, True), ({}, False)):
        ctx = context_from_airflow({"data_interval_start": start, "data_interval_end": end, "run_id": "r1",
                                    "dag_run": SimpleNamespace(conf=conf)})
        assert ctx.period.label == "2024-Q2" and ctx.full_extract is expected
        pipeline.extract(ctx, "portal_dvc")
    assert calls == [True, False]
