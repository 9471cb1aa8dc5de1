import os
from pathlib import Path

import pytest
from django.db import connection, connections

from tests.factories import PASSWORD


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def postgresql(db):
    """Tests that need PostgreSQL's row locks; skipped, with the reason, elsewhere."""
    if not on_postgresql():
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI always does)")


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs Redis: set REDIS_URL (CI always does)")
    return url


@pytest.fixture(autouse=True)
def _english_and_locmem_mail(settings, tmp_path):
    # Real password hashing costs a second per user on this machine; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # Each test keeps the documents it uploads to itself.
    settings.STORAGES = {**settings.STORAGES, "documents": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tmp_path / "documents", "base_url": None},
    }}


# Browser fixtures: Debian's Chromium driven by Playwright against Django's live server.
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests
# make between browser steps are still plain synchronous calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Playwright cannot download its own browsers here: use the system's Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium; CI has it)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def base_url():
    """No base URL: pages are opened by live_server's full address. pytest-playwright's
    own fallback fixture gives the same answer, but pytest 9 warns that it is declared as
    an instance method."""
    return None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """Wide enough for every board column, in English whatever the machine's locale."""
    return {
        **browser_context_args,
        "viewport": {"width": 1600, "height": 1000},
        "locale": "en-GB",
    }


@pytest.fixture(scope="session")
def databases_as_set_up(django_db_setup):
    """The connections that set up the test databases, taken before Playwright starts."""
    return {alias: connections[alias] for alias in connections}


@pytest.fixture(scope="session")
def playwright(databases_as_set_up, playwright):
    """Playwright, and serialized_rollback still working for every later test.

    Django keeps connections in asgiref's Local(thread_critical=True): once Playwright's
    event loop runs in this thread, that storage is per context instead of per thread, so
    tests get new connection objects, without the copy of the database (the role groups)
    serialized at set-up. Without that copy, serialized_rollback restores nothing, here
    and in every transactional test after the first browser test.
    """
    for alias, set_up in databases_as_set_up.items():
        if hasattr(set_up, "_test_serialized_contents"):
            connections[alias]._test_serialized_contents = set_up._test_serialized_contents
    return playwright


@pytest.fixture
def log_in(page, live_server):
    """Log a user in through the real login page; returns the page."""

    # Chromium asks for /favicon.ico on its own; answering it here keeps that request from
    # reaching the server while a test's database is being flushed.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))

    def log_in_as(user):
        page.set_default_timeout(10_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return log_in_as
