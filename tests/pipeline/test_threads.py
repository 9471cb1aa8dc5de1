"""Many people at once, served by a threaded WSGI server as `gunicorn --threads` would:
no server errors, and every change saved exactly once.

Real HTTP requests to Django's threaded live server, each thread with its own PostgreSQL
connection, hence transaction=True (serialized_rollback brings back the role groups).
"""

import http.client
import threading
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from pipeline.models import CriterionTick, Opportunity, StageChange
from pipeline.process import Stage
from tests.factories import OpportunityFactory, RepFactory, make_cast, satisfy_gate

concurrent = pytest.mark.django_db(transaction=True, serialized_rollback=True)

IDENTIFYING_TICKS = ["identifying.problem_described", "identifying.detail_sessions_committed",
                     "discovering.goals_written"]


class Session:
    """One signed-in browser: a session cookie and a CSRF token, over plain HTTP."""

    def __init__(self, live_server, user):
        client = Client()
        client.force_login(user)
        self.csrf = _get_new_csrf_string()
        self.cookie = (f"{client.cookies['sessionid'].key}={client.cookies['sessionid'].value};"
                       f" csrftoken={self.csrf}")
        self.address = urlsplit(live_server.url)

    def post(self, path: str, data: dict) -> int:
        server = http.client.HTTPConnection(self.address.hostname, self.address.port,
                                            timeout=60)
        try:
            server.request("POST", path, body=urlencode(data), headers={
                "Cookie": self.cookie, "X-CSRFToken": self.csrf,
                "Content-Type": "application/x-www-form-urlencoded",
            })
            response = server.getresponse()
            response.read()
            return response.status
        finally:
            server.close()


def all_at_once(work: list) -> list:
    """Run each callable in its own thread, released together; return their results."""
    barrier = threading.Barrier(len(work), timeout=30)
    results: list = [None] * len(work)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work[index]()
        except Exception as error:  # surfaced by the assertions
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    return results


def test_reloading_an_opportunity_leaves_the_stage_protected_for_other_threads(db):
    """The stage field is shared by every thread: a reload must not lower its guard, not
    even while it waits for the database."""
    opportunity = OpportunityFactory()
    field = Opportunity._meta.get_field("stage")
    seen_while_reading = []

    def note_protection(execute, sql, params, many, context):
        seen_while_reading.append(field.protected)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note_protection):
        opportunity.reload()

    assert seen_while_reading and all(seen_while_reading), seen_while_reading
    assert opportunity.stage == Stage.IDENTIFYING
    with pytest.raises(AttributeError):
        opportunity.stage = Stage.CLOSED


def test_a_reload_takes_the_stage_saved_meanwhile(db):
    cast = make_cast()
    opportunity = OpportunityFactory(owner=cast.rep)
    satisfy_gate(opportunity)
    elsewhere = Opportunity.objects.get(pk=opportunity.pk)
    elsewhere.move_to(Stage.DISCOVERING, by=cast.rep, via="page")

    opportunity.reload()

    assert (opportunity.stage, opportunity.version) == (Stage.DISCOVERING, elsewhere.version)
    assert opportunity.missing_criteria()  # the new stage's criteria, read afresh


@concurrent
def test_twenty_people_ticking_at_once_get_no_server_error_and_each_tick_is_saved_once(
        postgresql, live_server):
    reps = [RepFactory() for _ in range(20)]
    opportunities = [OpportunityFactory(owner=rep) for rep in reps]
    sessions = [Session(live_server, rep) for rep in reps]

    def ticks_and_withdrawals(session: Session, opportunity: Opportunity):
        """Five changes, each from the version the previous one left."""
        version = opportunity.version
        statuses = []
        steps = [("tick", IDENTIFYING_TICKS[0]), ("tick", IDENTIFYING_TICKS[1]),
                 ("untick", IDENTIFYING_TICKS[0]), ("tick", IDENTIFYING_TICKS[2]),
                 ("tick", IDENTIFYING_TICKS[0])]
        for action, criterion in steps:
            statuses.append(session.post(
                f"/opportunities/{opportunity.pk}/{action}/",
                {"criterion": criterion, "note": "Call notes", "version": version},
            ))
            version += 1
        return statuses

    results = all_at_once([
        (lambda s=session, o=opportunity: ticks_and_withdrawals(s, o))
        for session, opportunity in zip(sessions, opportunities, strict=True)
    ])

    statuses = [status for result in results for status in result]
    assert statuses == [302] * 100, results
    for opportunity in opportunities:
        stored = Opportunity.objects.get(pk=opportunity.pk)
        assert stored.version == opportunity.version + 5
        ticks = CriterionTick.objects.filter(opportunity=opportunity)
        assert ticks.count() == 4  # four ticks, one of them withdrawn
        assert sorted(ticks.filter(revoked_at__isnull=True)
                      .values_list("criterion", flat=True)) == sorted(IDENTIFYING_TICKS)


@concurrent
def test_people_racing_for_one_card_get_one_move_and_conflicts_never_a_server_error(
        postgresql, live_server):
    """Ten cards, each dragged by its rep and its manager at once, from the same version."""
    pairs = []
    for _ in range(10):
        cast = make_cast()
        opportunity = OpportunityFactory(owner=cast.rep)
        satisfy_gate(opportunity)
        opportunity.reload()
        pairs.append((opportunity, Session(live_server, cast.rep),
                      Session(live_server, cast.manager)))

    work = []
    for opportunity, rep, manager in pairs:
        move = {"stage": Stage.DISCOVERING, "version": opportunity.version}
        path = f"/opportunities/{opportunity.pk}/move/"
        work += [lambda s=rep, p=path, m=move: s.post(p, m),
                 lambda s=manager, p=path, m=move: s.post(p, m)]
    results = all_at_once(work)

    for index, (opportunity, _rep, _manager) in enumerate(pairs):
        outcome = sorted(results[2 * index: 2 * index + 2])
        assert outcome == [302, 409], results
        stored = Opportunity.objects.get(pk=opportunity.pk)
        assert (stored.stage, stored.version) == (Stage.DISCOVERING, opportunity.version + 1)
        assert StageChange.objects.filter(opportunity=opportunity).count() == 1
    assert get_user_model().objects.count() == 60
