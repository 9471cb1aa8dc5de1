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
    # Its own folder: collected static files and, without Redis, the file-system broker.
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
    collect_static_once()


def collect_static_once() -> None:
    """Without DEBUG, {% static %} reads whitenoise's manifest: collect it once."""
    from django.conf import settings
    from django.core.management import call_command

    if settings.DEBUG:
        return
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


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

    def line(self) -> str:
        return (f"{self.name:<28} median {self.median:7.2f} ms   p90 {self.p90:7.2f} ms   "
                f"min {self.fastest:7.2f} ms   {self.queries:3d} queries   "
                f"({len(self.times_ms)} rounds)")


def measure(name: str, request: Callable[[int], object], *, rounds: int, warmup: int,
            expected_status: int = 200) -> Figures:
    """Time `request(round_number)` after `warmup` untimed rounds, then count its queries
    in one more untimed round. Query capture wraps every cursor call, so it stays out of
    the timed rounds. Every response must have `expected_status`: a refused move or an
    error page would be fast and wrong."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def checked(number: int) -> None:
        response = request(number)
        status = getattr(response, "status_code", None)
        if status != expected_status:
            content = getattr(response, "content", b"")[:2000].decode(errors="replace")
            raise SystemExit(f"{name}: round {number} answered {status}, "
                             f"expected {expected_status}:\n{content}")

    for number in range(warmup):
        checked(number)
    times = []
    for number in range(warmup, warmup + rounds):
        started = time.perf_counter()
        checked(number)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        checked(warmup + rounds)
    return Figures(name=name, times_ms=tuple(times), queries=len(captured.captured_queries))


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
