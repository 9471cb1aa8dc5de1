"""Production as deployed: gunicorn started by crm/serve (the commands the Dockerfile and
compose.yaml run) with DEBUG off, collected static files and the content security policy,
against PostgreSQL and Redis; the health check; the JSON request log."""

import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test import Client

from crm.logs import JsonFormatter
from tests.factories import RepFactory

PASSWORD = "correct horse battery staple"
SERVE = str(django_settings.BASE_DIR / "crm" / "serve")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The test database this test's rows are committed to."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


def production_environment(var_dir: Path, **variables: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(var_dir),
        "PROGRESSION_VAR_DIR": str(var_dir),
        "STATIC_ROOT": str(var_dir / "static"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_FORMAT": "json",
        # gunicorn runs the project's interpreter, whichever virtualenv runs the tests.
        "PYTHON": sys.executable,
        **variables,
    }


class Browser:
    """Just enough of a browser behind a TLS-terminating proxy: cookies, and the
    X-Forwarded-Proto header the proxy sets."""

    def __init__(self, port: int):
        self.port = port
        self.cookies = SimpleCookie()

    def request(self, method: str, path: str, body: dict | None = None, *,
                https: bool = True) -> http.client.HTTPResponse:
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://127.0.0.1:{self.port}"
        server = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        server.request(method, path, body=data, headers=headers)
        response = server.getresponse()
        response.text = response.read().decode()
        server.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        return response


@pytest.fixture
def gunicorn(tmp_path, redis_url, postgresql):
    """gunicorn as crm/serve starts it in production, with its static files collected."""
    environment = production_environment(tmp_path, DATABASE_URL=database_url(),
                                         REDIS_URL=redis_url)
    for command in ("collectstatic", "migrate"):
        done = subprocess.run([SERVE, command], env=environment, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [SERVE, "web"], stdout=output, stderr=subprocess.STDOUT,
            env={**environment, "BIND": f"127.0.0.1:{port}", "WEB_WORKERS": "1"},
        )
    try:
        for _ in range(600):
            assert server.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, log
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gunicorn_in_production_answers_the_health_check_and_lets_a_user_log_in(gunicorn):
    port, log = gunicorn
    rep = RepFactory()
    # Hashed as production checks it (the tests' own hasher is not among its hashers);
    # few iterations, as this test needs no strength. Production re-hashes it at login.
    hasher = PBKDF2PasswordHasher()
    rep.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    rep.save(update_fields=["password"])
    browser = Browser(port)

    # The health check: plain HTTP, asked by address, no login.
    health = browser.request("GET", "/healthz", https=False)
    assert health.status == 200, health.text
    assert json.loads(health.text) == {
        "status": "ok", "checks": {"database": "ok", "broker": "ok"}}

    # Plain HTTP is sent to HTTPS; through the proxy the login page comes with the policy.
    assert browser.request("GET", "/login/", https=False).status == 301
    login_page = browser.request("GET", "/login/")
    assert login_page.status == 200
    policy = login_page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "max-age=" in login_page.headers["Strict-Transport-Security"]
    # Static files come from the collected, hashed copies.
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]+\.css)"', login_page.text)
    assert stylesheet, "no hashed stylesheet on the login page"
    assert browser.request("GET", stylesheet.group(1)).status == 200

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    signed_in = browser.request("POST", "/login/", {
        "csrfmiddlewaretoken": token, "username": rep.username, "password": PASSWORD})

    assert signed_in.status == 302, signed_in.text
    assert signed_in.headers["Location"] == "/"
    assert browser.cookies["sessionid"]["secure"]
    board = browser.request("GET", "/board/")
    assert board.status == 200
    assert rep.get_full_name() in board.text

    # Every line is a JSON object (gunicorn's own too), one per request with its user.
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(entry["logger"] == "gunicorn.error" for entry in entries)
    login_entry = next(entry for entry in entries
                       if entry.get("path") == "/login/" and entry.get("method") == "POST")
    assert login_entry["status"] == 302
    assert login_entry["user_id"] == rep.pk
    assert login_entry["duration_ms"] >= 0
    assert login_entry["time"].endswith("+00:00")


# --- /healthz in the process ---

def test_the_health_check_answers_200_without_login_when_database_and_broker_answer(
        db, client, redis_url, settings):
    settings.CELERY_BROKER_URL = redis_url

    response = client.get("/healthz", HTTP_HOST="10.1.2.3")  # a load balancer, by address

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_the_health_check_answers_503_when_the_broker_is_unreachable(db, client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"].startswith("unavailable")


def test_the_health_check_takes_plain_http_even_where_https_is_enforced(db, client, settings,
                                                                          tmp_path):
    settings.SECURE_SSL_REDIRECT = True
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}

    assert client.get("/healthz").status_code == 200
    assert client.get("/login/").status_code == 301


def test_the_file_system_broker_counts_as_up_only_while_its_folder_is_writable(
        db, client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}

    assert client.get("/healthz").status_code == 503
    (tmp_path / "gone").mkdir()
    assert client.get("/healthz").status_code == 200


# --- the JSON request log ---

def test_each_request_logs_one_json_line_with_status_duration_and_user(db, caplog):
    rep = RepFactory()
    client = Client()
    client.force_login(rep)
    caplog.set_level("INFO", logger="progression.requests")

    client.get("/board/")

    [record] = [r for r in caplog.records if r.name == "progression.requests"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["method"] == "GET"
    assert entry["path"] == "/board/"
    assert entry["status"] == 200
    assert entry["user_id"] == rep.pk
    assert isinstance(entry["duration_ms"], float)
    assert {"time", "level", "message"} <= set(entry)
    assert "\n" not in JsonFormatter().format(record)


def test_an_anonymous_request_logs_no_user(db, caplog):
    caplog.set_level("INFO", logger="progression.requests")

    Client().get("/login/")

    [record] = [r for r in caplog.records if r.name == "progression.requests"]
    assert json.loads(JsonFormatter().format(record))["user_id"] is None
