"""Run a real Celery worker, and beat if asked, against pytest-django's test database.

For integration tests on PostgreSQL with Redis. The worker is another process, so it only
sees committed rows (mark the test `django_db(transaction=True, serialized_rollback=True)`;
the flush after such a test removes the role groups, serialized_rollback brings them back)
and needs a broker both sides share: point this process at it with `broker(url)`:

    with broker(redis_url), celery_worker(broker_url=redis_url, folder=tmp_path) as celery:
        ...  # a change that queues a task
        wait_until(lambda: ..., "the worker to do it", celery)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import pools

from crm.celery import app as celery_app

# The celery command of the virtual environment running the tests.
CELERY = str(Path(sys.executable).parent / "celery")
# Bounds, not expectations: a worker starts in a few seconds and needs about 4 s to stop
# on SIGTERM, both slower on a busy machine.
START_TIMEOUT = 60
STOP_TIMEOUT = 30
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"

# Decided before any database work: a skipped transactional test still flushes the
# database afterwards, which would wipe the role groups for the tests after it.
needs_postgresql_and_redis = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
    reason="needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL (CI always does)",
)


def worker_database_url() -> str:
    """DATABASE_URL of the test database this process uses, for a child process."""
    database = connection.settings_dict
    if connection.vendor != "postgresql":
        raise RuntimeError("A worker process needs the PostgreSQL test database.")
    credentials = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database["HOST"] or ""
    port = f":{database['PORT']}" if database["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(database['NAME'], safe='')}"


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Publish from this process to `url`, then go back to the configured broker."""
    previous = celery_app.conf.broker_url
    _use_broker(url)
    try:
        yield
    finally:
        _use_broker(previous)


def _use_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    # Connections and producers are pooled per broker in kombu's registry, shared by every
    # app: closing only the app's connection pool left the registry's producer pool for the
    # same broker holding it, and the next publish there failed with "Acquire on closed
    # pool" (a sweep in one test, a worker test on the same broker later). Forget them all,
    # as after a fork.
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    # kombu also keeps producer pools in a registry of its own, by broker URL: without
    # this, going back to a URL used before finds the pool just closed above.
    pools.reset()


def flush_redis(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.flushdb()


@dataclass
class RunningCelery:
    folder: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log(self, name: str = "worker") -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)}" for name in self.processes)

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"celery {name} exited with {process.returncode}:\n{self.logs()}"
                )


def wait_until(
    condition: Callable[[], object],
    what: str,
    celery: RunningCelery | None = None,
    timeout: float = 30,
) -> object:
    """Poll `condition` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if celery is not None:
            celery.check_running()
        if time.monotonic() > deadline:
            logs = celery.logs() if celery else ""
            raise AssertionError(f"Gave up waiting {timeout:g} s for {what}.\n{logs}")
        time.sleep(0.1)


@contextmanager
def celery_worker(
    *,
    broker_url: str,
    folder: Path,
    beat: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[RunningCelery]:
    """A worker (solo pool) on the test database and `broker_url`, stopped on exit.

    E-mail goes to files in `folder`/mail. With `beat`, a beat process runs too and every
    periodic task is due at once instead of one interval after start.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mail").mkdir(exist_ok=True)
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "PROGRESSION_VAR_DIR": str(folder / "var"),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(folder / "mail"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    running = RunningCelery(folder)
    try:
        running.processes["worker"] = _start(
            [
                "worker", "--pool=solo", "--loglevel=INFO",
                f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            folder / "worker.log", child_env,
        )
        if beat:
            schedule = folder / "celerybeat-schedule"
            _make_every_periodic_task_due(schedule)
            running.processes["beat"] = _start(
                ["beat", "--loglevel=INFO", f"--schedule={schedule}", "--max-interval=1"],
                folder / "beat.log", child_env,
            )
        wait_until(
            lambda: " ready." in running.log("worker"), "the worker to start", running,
            timeout=START_TIMEOUT,
        )
        if beat:
            wait_until(
                lambda: "Starting..." in running.log("beat"), "beat to start", running,
                timeout=START_TIMEOUT,
            )
        yield running
    finally:
        _stop_all(running)


def _start(arguments: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen(
            [CELERY, "-A", "crm", *arguments],
            cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT,
        )


def _stop_all(running: RunningCelery) -> None:
    # Beat first, so it publishes nothing to a worker that is going away.
    for process in reversed(running.processes.values()):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    stuck = []
    for name, process in running.processes.items():
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            stuck.append(name)
    if stuck:
        raise AssertionError(f"celery {', '.join(stuck)} ignored SIGTERM:\n{running.logs()}")


def _make_every_periodic_task_due(schedule: Path) -> None:
    """Write a beat schedule whose entries last ran long ago, so beat sends them at once."""
    scheduler = PersistentScheduler(app=celery_app, schedule_filename=str(schedule))
    long_ago = timezone.now() - timedelta(days=1)
    for entry in scheduler.schedule.values():
        entry.last_run_at = long_ago
    scheduler.close()
