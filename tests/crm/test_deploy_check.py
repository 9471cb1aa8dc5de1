"""Production settings pass Django's deployment checklist with nothing silenced."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from crm.settings import refuse_weak_secret_key


def production_environment(var_dir: Path, **variables: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "PROGRESSION_VAR_DIR": str(var_dir),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "crm.example.com",
        **variables,
    }


def manage(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=django_settings.BASE_DIR, env=environment, capture_output=True, text=True,
        timeout=120,
    )


def test_the_deployment_check_reports_nothing_in_production(tmp_path):
    result = manage(
        production_environment(tmp_path), "check", "--deploy", "--fail-level", "WARNING"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_no_system_check_is_silenced_in_production(tmp_path):
    result = manage(
        production_environment(tmp_path),
        "shell", "--no-imports", "-c",
        "from django.conf import settings; print(settings.SILENCED_SYSTEM_CHECKS)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_system_check_is_silenced_here_either():
    assert django_settings.SILENCED_SYSTEM_CHECKS == []


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    environment = production_environment(tmp_path)
    del environment["SECRET_KEY"]

    result = manage(environment, "check")

    assert result.returncode != 0
    assert "Set SECRET_KEY when DEBUG is off." in result.stderr


WEAK_KEYS = [
    "short-but-random-Xy7",
    "insecure-local-development-key-never-use-in-production-0123456789",  # the demo's
    "django-insecure-" + secrets.token_urlsafe(40),  # what startproject writes
    "a" * 60,
]


def test_production_refuses_to_start_with_a_weak_secret_key(tmp_path):
    result = manage(production_environment(tmp_path, SECRET_KEY=WEAK_KEYS[0]), "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is too weak for production" in result.stderr


@pytest.mark.parametrize("weak_key", WEAK_KEYS)
def test_short_default_or_generated_insecure_keys_are_refused(weak_key):
    with pytest.raises(ImproperlyConfigured, match="too weak for production"):
        refuse_weak_secret_key(weak_key)


def test_a_long_random_key_is_accepted():
    refuse_weak_secret_key(secrets.token_urlsafe(50))
