"""Settings from the environment, and the demo defaults when it sets nothing."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from crm.models import fiscal_quarter, fiscal_quarter_bounds, fiscal_quarters_around

PROBE = """
import json, sqlite3
import django
django.setup()
from django.conf import settings
from django.db import connection, transaction
from crm.celery import app

report = {
    "database": settings.DATABASES["default"],
    "broker_url": settings.CELERY_BROKER_URL,
    "broker_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "currency": settings.COMPANY_CURRENCY,
    "fiscal_year_start_month": settings.FISCAL_YEAR_START_MONTH,
}
if connection.vendor == "sqlite":
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        report["journal_mode"] = cursor.fetchone()[0]
    # IMMEDIATE takes the write lock when the transaction begins, before any write.
    with transaction.atomic():
        rival = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=0)
        try:
            rival.execute("BEGIN IMMEDIATE")
            report["rival_could_start_writing"] = True
        except sqlite3.OperationalError:
            report["rival_could_start_writing"] = False
        rival.close()
if settings.CELERY_BROKER_URL == "filesystem://":
    with app.connection_for_write() as broker:
        queue = broker.SimpleQueue("settings-probe")
        queue.put({"probe": 1})
        message = queue.get(timeout=10)
        message.ack()
        report["broker_round_trip"] = message.payload
        queue.close()
print(json.dumps(report, default=str))
"""


def clean_environment(var_dir: Path, **variables: str) -> dict[str, str]:
    """No DATABASE_URL, REDIS_URL or anything else from this shell: a fresh machine."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "PROGRESSION_VAR_DIR": str(var_dir),
        **variables,
    }


def run_probe(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=django_settings.BASE_DIR, env=environment, capture_output=True, text=True,
        timeout=120,
    )


def probe(environment: dict[str, str]) -> dict:
    result = run_probe(environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fresh_machine(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("var")
    return var_dir, probe(clean_environment(var_dir))


def test_without_database_url_the_database_is_a_sqlite_file_in_the_var_folder(fresh_machine):
    var_dir, report = fresh_machine

    assert report["database"]["ENGINE"] == "django.db.backends.sqlite3"
    assert report["database"]["NAME"] == str(var_dir / "progression.sqlite3")
    assert (var_dir / "progression.sqlite3").is_file()


def test_the_sqlite_database_runs_in_wal_mode_with_immediate_transactions(fresh_machine):
    _, report = fresh_machine

    assert report["journal_mode"] == "wal"
    assert report["database"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert report["rival_could_start_writing"] is False


def test_without_redis_url_the_broker_is_a_working_folder_on_disk(fresh_machine):
    var_dir, report = fresh_machine
    options = report["broker_options"]

    assert report["broker_url"] == "filesystem://"
    assert options["data_folder_in"] == options["data_folder_out"]
    for folder in (options["data_folder_in"], options["processed_folder"]):
        assert Path(folder).is_dir()
        assert Path(folder).is_relative_to(var_dir)
    assert report["broker_round_trip"] == {"probe": 1}


def test_with_redis_url_the_broker_is_redis_and_no_broker_folder_is_made(tmp_path):
    report = probe(clean_environment(tmp_path, REDIS_URL="redis://broker.example:6379/3"))

    assert report["broker_url"] == "redis://broker.example:6379/3"
    assert not (tmp_path / "broker").exists()


def test_currency_and_fiscal_year_default_to_euro_and_january(fresh_machine):
    _, report = fresh_machine

    assert report["currency"] == "EUR"
    assert report["fiscal_year_start_month"] == 1


def test_currency_and_fiscal_year_come_from_the_environment(tmp_path):
    report = probe(clean_environment(tmp_path, COMPANY_CURRENCY="chf", FISCAL_YEAR_START_MONTH="4"))

    assert report["currency"] == "CHF"
    assert report["fiscal_year_start_month"] == 4


def test_a_fiscal_year_start_month_out_of_range_stops_the_app_with_a_clear_message(tmp_path):
    result = run_probe(clean_environment(tmp_path, FISCAL_YEAR_START_MONTH="13"))

    assert result.returncode != 0
    assert "FISCAL_YEAR_START_MONTH must be between 1 and 12" in result.stderr


# --- fiscal quarters; a fiscal year is named after the calendar year in which it ends ---

QUARTER_OF_DAY = [
    # start month, day, (fiscal year, quarter)
    (1, date(2025, 1, 1), (2025, 1)),
    (1, date(2025, 3, 31), (2025, 1)),
    (1, date(2025, 4, 1), (2025, 2)),
    (1, date(2025, 9, 30), (2025, 3)),
    (1, date(2025, 12, 31), (2025, 4)),
    (4, date(2025, 3, 31), (2025, 4)),
    (4, date(2025, 4, 1), (2026, 1)),
    (4, date(2025, 6, 30), (2026, 1)),
    (4, date(2025, 7, 1), (2026, 2)),
    (4, date(2025, 12, 31), (2026, 3)),
    (4, date(2026, 1, 1), (2026, 4)),
    (4, date(2026, 3, 31), (2026, 4)),
    (10, date(2025, 9, 30), (2025, 4)),
    (10, date(2025, 10, 1), (2026, 1)),
    (10, date(2025, 12, 31), (2026, 1)),
    (10, date(2026, 1, 1), (2026, 2)),
    (10, date(2026, 6, 30), (2026, 3)),
    (10, date(2026, 7, 1), (2026, 4)),
    (10, date(2026, 9, 30), (2026, 4)),
]

QUARTER_BOUNDS = [
    # start month, fiscal year, quarter, (first day, first day after)
    (1, 2025, 1, (date(2025, 1, 1), date(2025, 4, 1))),
    (1, 2025, 4, (date(2025, 10, 1), date(2026, 1, 1))),
    (4, 2026, 1, (date(2025, 4, 1), date(2025, 7, 1))),
    (4, 2026, 3, (date(2025, 10, 1), date(2026, 1, 1))),
    (4, 2026, 4, (date(2026, 1, 1), date(2026, 4, 1))),
    (10, 2026, 1, (date(2025, 10, 1), date(2026, 1, 1))),
    (10, 2026, 2, (date(2026, 1, 1), date(2026, 4, 1))),
    (10, 2026, 4, (date(2026, 7, 1), date(2026, 10, 1))),
]


@pytest.mark.parametrize(("start_month", "day", "expected"), QUARTER_OF_DAY)
def test_fiscal_quarter_of_a_day(settings, start_month, day, expected):
    settings.FISCAL_YEAR_START_MONTH = start_month

    assert fiscal_quarter(day) == expected


@pytest.mark.parametrize(("start_month", "year", "quarter", "expected"), QUARTER_BOUNDS)
def test_fiscal_quarter_bounds(settings, start_month, year, quarter, expected):
    settings.FISCAL_YEAR_START_MONTH = start_month

    assert fiscal_quarter_bounds(year, quarter) == expected


def test_the_quarters_around_a_day_cross_the_fiscal_year(settings):
    settings.FISCAL_YEAR_START_MONTH = 4  # April: 1 December 2026 is in Q3 of 2027

    assert fiscal_quarters_around(date(2026, 12, 1), before=2, after=2) == [
        "2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"]


@pytest.mark.parametrize("start_month", range(1, 13))
def test_every_day_lies_in_the_bounds_of_its_quarter_and_quarters_follow_each_other(
    settings, start_month
):
    settings.FISCAL_YEAR_START_MONTH = start_month
    day = date(2024, 1, 1)
    while day < date(2027, 1, 1):
        year, quarter = fiscal_quarter(day)
        first, after = fiscal_quarter_bounds(year, quarter)
        assert first <= day < after, (day, year, quarter)
        assert fiscal_quarter(after) == ((year, quarter + 1) if quarter < 4 else (year + 1, 1))
        day += timedelta(days=1)
