import os

import pytest
from django.db import connection


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
