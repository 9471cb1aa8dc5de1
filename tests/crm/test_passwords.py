"""Changing one's password, and resetting a forgotten one through a link by e-mail."""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, RepFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 2026"


def can_log_in(username: str, password: str) -> bool:
    response = Client().post("/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_a_forgotten_password_is_reset_through_the_link_in_the_email():
    rep = RepFactory(email="rita@example.com")
    client = Client()
    assert "/password/reset/" in client.get("/login/").content.decode()

    sent = client.post("/password/reset/", {"email": "RITA@example.com"}, follow=True)

    assert "a link to choose a new password is on its way" in sent.content.decode()
    [email] = mail.outbox
    assert email.to == ["rita@example.com"]
    assert email.subject == "Reset your Progression password"
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", email.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    set_password_url = form.redirect_chain[-1][0]
    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD,
                                          "new_password2": NEW_PASSWORD}, follow=True)
    assert "Your password was reset" in done.content.decode()
    assert can_log_in(rep.username, NEW_PASSWORD)
    assert not can_log_in(rep.username, PASSWORD)
    # The link works once.
    again = Client().get(link, follow=True)
    assert "invalid" in again.content.decode()


def test_the_admin_login_offers_the_same_reset():
    page = Client().get("/admin/login/").content.decode()

    assert 'href="/admin/password_reset/"' in page
    assert Client().get("/admin/password_reset/")["Location"] == "/password/reset/"


def test_asking_for_a_reset_does_not_tell_whether_an_address_has_an_account():
    response = Client().post("/password/reset/", {"email": "nobody@example.com"}, follow=True)

    assert response.status_code == 200
    assert "a link to choose a new password is on its way" in response.content.decode()
    assert mail.outbox == []


def test_a_signed_in_user_changes_the_password_with_the_old_one():
    rep = RepFactory()
    client = Client()
    client.force_login(rep)
    assert "/password/change/" in client.get("/board/").content.decode()

    wrong = client.post("/password/change/", {
        "old_password": "not it", "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 200
    assert can_log_in(rep.username, PASSWORD)

    changed = client.post("/password/change/", {
        "old_password": PASSWORD, "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD}, follow=True)

    assert "Your password was changed" in changed.content.decode()
    assert client.get("/board/").status_code == 200  # still signed in here
    assert can_log_in(rep.username, NEW_PASSWORD)


def test_the_password_pages_speak_german():
    client = Client(HTTP_ACCEPT_LANGUAGE="de")

    page = client.get("/password/reset/").content.decode()

    assert "Passwort vergessen?" in page
