"""Shared set-up and timing for the benchmarks in bench/: the board and its floor are
measured the same way, in one process, through Django's test client.

Run a benchmark from the project root with DATABASE_URL pointing at PostgreSQL. Unless the
environment says otherwise the app runs as in production (DEBUG off, cached templates,
whitenoise's manifest storage, persistent connections), because DEBUG keeps every query
in memory and would distort both the time and the comparison.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR_DIR = PROJECT_ROOT / "var" / "bench"

# Production-like defaults; the environment wins so a run can say DEBUG=1 on purpose.
PRODUCTION_LIKE = {
    "DJANGO_SETTINGS_MODULE": "crm.settings",
    "DEBUG": "0",
    "SECRET_KEY": "benchmark-only-secret-key-not-used-anywhere-else-0123456789",
    "ALLOWED_HOSTS": "testserver",
    # Its own folder, for the file-system broker when REDIS_URL is not set.
    "PROGRESSION_VAR_DIR": str(BENCH_VAR_DIR),
    "LOG_LEVEL": "WARNING",
}


def setup_django() -> None:
    """Configure and start Django for a benchmark script run as `python bench/x.py`."""
    for name, value in PRODUCTION_LIKE.items():
        os.environ.setdefault(name, value)
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import django

    django.setup()
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        print("warning: not PostgreSQL; set DATABASE_URL for figures worth recording",
              file=sys.stderr)
    use_plain_static_storage()


def use_plain_static_storage() -> None:
    """Static URLs without whitenoise's manifest: `collectstatic` is not needed first (and
    fails at the time of writing on a vendored file's missing source map). A page has a
    handful of {% static %} tags, so the figures do not depend on it."""
    from django.conf import settings
    from django.test.utils import override_settings

    storages = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
    }}
    override_settings(STORAGES=storages).enable()


def benchmark_urls(extra_patterns: list) -> list:
    """The app's own URLs plus a benchmark's, for a ROOT_URLCONF of the benchmark."""
    from django.urls import include, path

    return [*extra_patterns, path("", include("crm.urls"))]


# --- timing ---


@dataclass(frozen=True)
class Figures:
    """Server times of one request in milliseconds, and its query count."""

    name: str
    times_ms: tuple[float, ...]
    queries: int
    # This process's CPU time per round: Python's share, less disturbed than the wall time
    # by other processes on a busy machine (the database's own work is not in it).
    cpu_ms: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]

    @property
    def fastest(self) -> float:
        return min(self.times_ms)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    def line(self) -> str:
        return (f"{self.name:<26} median {self.median:7.2f} ms   p90 {self.p90:7.2f} ms   "
                f"min {self.fastest:7.2f} ms   python cpu {self.cpu_median:7.2f} ms   "
                f"{self.queries:3d} queries   ({len(self.times_ms)} rounds)")


@dataclass(frozen=True)
class Subject:
    """One request to time: `request(round_number)` returns the response, and `reset`,
    when given, runs untimed after every round (to put a moved card back)."""

    name: str
    request: Callable[[int], object]
    reset: Callable[[int], None] | None = None
    expected_status: int = 200


def measure(subjects: list[Subject], *, rounds: int, warmup: int) -> dict[str, Figures]:
    """Time every subject `rounds` times after `warmup` untimed rounds, interleaved round
    by round so that a change in the machine's load hits all of them alike; then count
    each one's queries in one more untimed round (query capture wraps every cursor call,
    so it stays out of the timed rounds). Every response must have its expected status:
    a refused move or an error page would be fast and wrong."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def check(subject: Subject, number: int, response) -> None:
        status = getattr(response, "status_code", None)
        if status != subject.expected_status:
            content = getattr(response, "content", b"")[:2000].decode(errors="replace")
            raise SystemExit(f"{subject.name}: round {number} answered {status}, "
                             f"expected {subject.expected_status}:\n{content}")
        if subject.reset is not None:
            subject.reset(number)

    times = {subject.name: [] for subject in subjects}
    cpu = {subject.name: [] for subject in subjects}
    for number in range(warmup + rounds):
        for subject in subjects:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = subject.request(number)
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.process_time() - started_cpu) * 1000
            check(subject, number, response)
            if number >= warmup:
                times[subject.name].append(elapsed)
                cpu[subject.name].append(elapsed_cpu)
    figures = {}
    for subject in subjects:
        number = warmup + rounds
        with CaptureQueriesContext(connection) as captured:
            response = subject.request(number)
        # Counted before the reset: the next request clears the connection's query log.
        queries = len(captured.captured_queries)
        check(subject, number, response)
        figures[subject.name] = Figures(
            name=subject.name, times_ms=tuple(times[subject.name]), queries=queries,
            cpu_ms=tuple(cpu[subject.name]),
        )
    return figures


def print_environment() -> None:
    """What the figures were measured on, for the record."""
    import platform

    import django
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select version()" if connection.vendor == "postgresql"
                       else "select sqlite_version()")
        database = cursor.fetchone()[0].split(" on ")[0]
    print(f"python {platform.python_version()}, django {django.get_version()}, {database}, "
          f"{os.cpu_count()} cores, DEBUG={settings.DEBUG}, "
          f"CONN_MAX_AGE={settings.DATABASES['default'].get('CONN_MAX_AGE')}")
    print(f"machine now: load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}, "
          f"calibration {calibration_ms():.1f} ms")


def calibration_ms() -> float:
    """Best of five runs of a fixed pure-Python loop: how fast this machine is right now.
    On a shared machine the figures scale with it; compare runs by it."""
    best = math.inf
    for _attempt in range(5):
        started = time.perf_counter()
        sum(range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000
