"""Signing in and out, and a user's roles as each request reads them: a change to who may
do what counts from the next request, never from the next sign-in."""

from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from crm.models import Role
from pipeline.process import Stage
from tests.factories import ManagerFactory, OpportunityFactory, RepFactory, TeamFactory

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    """A browser that signed in through the login page."""
    client = Client()
    response = client.post("/login/", {"username": user.username,
                                       "password": "correct horse battery staple"})
    assert response.status_code == 302, "the login was refused"
    return client


def test_after_signing_out_a_copy_of_the_session_cookie_lets_nobody_in():
    rep = RepFactory()
    client = signed_in(rep)
    thief = Client()
    thief.cookies = SimpleCookie(client.cookies)  # a copy of the same session cookie
    assert thief.get("/board/").status_code == 200

    client.post("/logout/")

    response = thief.get("/board/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_revoked_role_no_longer_counts_at_the_next_request():
    team = TeamFactory()
    manager = ManagerFactory(team=team)
    opportunity = OpportunityFactory(owner=RepFactory(team=team), name="Nordbank renewal")
    client = signed_in(manager)
    assert "Nordbank renewal" in client.get("/board/").content.decode()

    manager.groups.remove(Group.objects.get(name=Role.MANAGER))

    # Without a role a user sees nothing of the team's pipeline.
    assert "Nordbank renewal" not in client.get("/board/").content.decode()
    page = client.get(opportunity.get_absolute_url())
    assert page.status_code == 404
    assert opportunity.stage == Stage.IDENTIFYING


def test_a_deactivated_user_is_signed_out_at_the_next_request():
    rep = RepFactory()
    client = signed_in(rep)
    assert client.get("/board/").status_code == 200

    rep.is_active = False
    rep.save()

    response = client.get("/board/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_session_left_idle_too_long_ends(settings):
    rep = RepFactory()
    client = signed_in(rep)
    session = Session.objects.get(pk=client.session.session_key)
    assert session.expire_date <= timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)

    # Nobody used it for longer than the idle limit.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get("/board/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_each_request_moves_the_end_of_a_session_in_use(settings):
    assert settings.SESSION_COOKIE_AGE <= 24 * 60 * 60  # a session ends within a day idle
    rep = RepFactory()
    client = signed_in(rep)
    key = client.session.session_key
    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.filter(pk=key).update(expire_date=soon)

    assert client.get("/board/").status_code == 200

    assert Session.objects.get(pk=key).expire_date > soon
    assert client.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE


def test_beat_clears_the_sessions_that_ended_once_a_day(settings):
    from crm.tasks import clear_expired_sessions

    ended = signed_in(RepFactory()).session.session_key
    current = signed_in(RepFactory()).session.session_key
    Session.objects.filter(pk=ended).update(expire_date=timezone.now() - timedelta(minutes=1))

    clear_expired_sessions()

    assert list(Session.objects.values_list("pk", flat=True)) == [current]
    entry = settings.CELERY_BEAT_SCHEDULE["clear-expired-sessions"]
    assert (entry["task"], entry["schedule"]) == (clear_expired_sessions.name, timedelta(days=1))
