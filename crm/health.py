"""/healthz: does this process reach the database and the Celery broker?

For the compose health checks and load balancers: no login, JSON, 200 or 503, and quick
(a second or two at most) when something is down.
"""

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpResponse

BROKER_TIMEOUT_SECONDS = 1.5


def answer_health_checks(get_response):
    """Answer /healthz before any other middleware: a load balancer asks by IP address and
    over plain HTTP, which the host check and the SSL redirect would refuse."""

    def middleware(request):
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return health_response()
        return get_response(request)

    return middleware


def health_response() -> HttpResponse:
    checks = {"database": database_status(), "broker": broker_status()}
    healthy = all(status == "ok" for status in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    response = HttpResponse(json.dumps(body), content_type="application/json",
                            status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return f"unavailable: {type(error).__name__}"
    return "ok"


def broker_status() -> str:
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith("filesystem://"):
            folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
            if not (folder.is_dir() and os.access(folder, os.W_OK)):
                return "unavailable: the broker folder is not writable"
        elif url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                                          socket_timeout=BROKER_TIMEOUT_SECONDS)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as broker:
                broker.ensure_connection(max_retries=1)
    except Exception as error:
        return f"unavailable: {type(error).__name__}"
    return "ok"
