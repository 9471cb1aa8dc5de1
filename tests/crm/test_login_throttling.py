"""Login throttling (django-axes): a run of wrong passwords locks that login out with a
429 page, in the app and in the admin; the right password resets the count."""

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import RepFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def try_password(client: Client, path: str, username: str, password: str):
    return client.post(path, {"username": username, "password": password})


def test_the_app_login_locks_out_after_too_many_wrong_passwords():
    rep = RepFactory()
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    assert 3 <= limit <= 20  # enough for typos, too few for guessing

    for _ in range(limit - 1):
        refused = try_password(client, "/login/", rep.username, "wrong")
        assert refused.status_code == 200
        assert "did not match" in refused.content.decode()
    locked = try_password(client, "/login/", rep.username, "wrong")

    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page
    assert f"After {limit} wrong passwords in a row" in page
    assert "/password/reset/" in page
    # Locked means locked: even the right password is refused until the lockout ends.
    assert try_password(client, "/login/", rep.username, PASSWORD).status_code == 429
    assert Client().get("/board/").status_code == 302


def test_the_admin_login_locks_out_after_too_many_wrong_passwords():
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert try_password(client, "/admin/login/", admin.username, "wrong").status_code == 200
    locked = try_password(client, "/admin/login/", admin.username, "wrong")

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert try_password(client, "/admin/login/", admin.username, PASSWORD).status_code == 429


def test_a_successful_login_resets_the_count_of_wrong_passwords():
    rep = RepFactory()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        try_password(client, "/login/", rep.username, "wrong")
    assert try_password(client, "/login/", rep.username, PASSWORD).status_code == 302
    client.post("/logout/")

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert try_password(client, "/login/", rep.username, "wrong").status_code == 200
    assert try_password(client, "/login/", rep.username, PASSWORD).status_code == 302


def test_one_locked_out_login_leaves_the_others_alone():
    rep, colleague = RepFactory(), RepFactory()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        try_password(client, "/login/", rep.username, "wrong")

    assert try_password(client, "/login/", colleague.username, PASSWORD).status_code == 302


def test_the_lockout_page_speaks_german():
    rep = RepFactory()
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        try_password(client, "/login/", rep.username, "wrong")

    locked = try_password(client, "/login/", rep.username, "wrong")

    assert locked.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldungen" in locked.content.decode()
