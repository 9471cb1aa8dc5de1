"""`make run` on PostgreSQL: Django's development server starts a thread per request, and
however many it starts, the app holds no more connections than its pool."""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.factories import OpportunityFactory, RepFactory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVER_NAME = "runserver-under-test"


def connections_of_the_server() -> int:
    """Connections the server holds (libpq names them after PGAPPNAME)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       [SERVER_NAME])
        return cursor.fetchone()[0]


def get(port: int, path: str, cookie: str) -> int:
    server = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        server.request("GET", path, headers={"Cookie": cookie})
        response = server.getresponse()
        response.read()
        return response.status
    finally:
        server.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_hundred_requests_from_ten_clients_hold_no_more_connections_than_the_pool(
        postgresql, tmp_path):
    rep = RepFactory()
    OpportunityFactory(owner=rep)
    browser = Client()
    browser.force_login(rep)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    database = settings.DATABASES["default"]
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
                        f"/{database['NAME']}",
        "PROGRESSION_VAR_DIR": str(tmp_path),
        "DEBUG": "true",
        "PGAPPNAME": SERVER_NAME,
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port, "/login/", "")
                break
            except OSError:
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.2)
        statuses: list[int] = []

        def client() -> None:
            for _ in range(10):
                statuses.append(get(port, "/board/", cookie))

        clients = [threading.Thread(target=client) for _ in range(10)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)

        assert statuses == [200] * 100
        assert 1 <= connections_of_the_server() <= settings.DATABASE_POOL_SIZE
    finally:
        server.terminate()
        server.wait(timeout=30)
