"""The timeout sweep parks overdue opportunities in batches, each exactly as a single move
to Dead would, and each once: with two sweeps at once, a rep's move in between, or a
sweep killed half-way and started again (issue 11, "The sweep at scale")."""

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from crm.models import Notification
from pipeline.models import ChangeRefused, CriterionTick, Opportunity, StageChange, Via
from pipeline.models.parking import timeout_reasons
from pipeline.process import DeadReason, Stage
from tests.celery_worker import needs_postgresql_and_redis, worker_database_url
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    RepFactory,
    advance,
    plan_call,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db


def overdue(stage: Stage = Stage.DISCOVERING, *, owner=None, days_over: int = 1) -> Opportunity:
    """An opportunity brought to `stage` the real way, whose deadline passed `days_over`
    days ago and that nobody touched for ten days."""
    opportunity = OpportunityFactory(**({"owner": owner} if owner else {}))
    advance(opportunity, stage)
    now = timezone.now()
    Opportunity.objects.filter(pk=opportunity.pk).update(
        stage_deadline=now - timedelta(days=days_over), changed_at=now - timedelta(days=10),
    )
    opportunity.reload()
    return opportunity


def written_by_the_park(opportunity: Opportunity) -> dict:
    """What parking wrote about one opportunity: its row, its history rows to Dead and the
    notifications about it, ids and the notification's own creation time left out."""
    link = opportunity.get_absolute_url()
    return {
        "row": Opportunity.objects.filter(pk=opportunity.pk).values().get(),
        "history": list(StageChange.objects.filter(opportunity=opportunity, to_stage=Stage.DEAD)
                        .values(*[field.attname for field in StageChange._meta.concrete_fields
                                  if field.attname != "id"])),
        "notifications": list(Notification.objects.filter(link=link).values(
            *[field.attname for field in Notification._meta.concrete_fields
              if field.attname not in ("id", "created_at")])),
    }


def test_a_batch_writes_exactly_what_a_move_to_dead_writes():
    owner = RepFactory(language="de")
    opportunity = overdue(Stage.FINALIZING, owner=owner)
    satisfy_gate(opportunity)  # a purchase order too: every derived criterion is read
    now = timezone.now()
    Opportunity.objects.filter(pk=opportunity.pk).update(
        stage_deadline=now - timedelta(days=1), changed_at=now - timedelta(days=10))
    opportunity.reload()
    version = opportunity.version

    before = transaction.savepoint()
    opportunity.move_to(Stage.DEAD, by=None, via=Via.TIMEOUT, now=now,
                        reason=timeout_reasons()[Stage.FINALIZING],
                        dead_reason=DeadReason.TIMEOUT)
    by_move = written_by_the_park(opportunity)
    transaction.savepoint_rollback(before)

    assert Opportunity.park_overdue(now) == (1, [])
    by_batch = written_by_the_park(opportunity)

    assert by_batch == by_move
    assert by_batch["row"]["stage"] == Stage.DEAD
    assert by_batch["row"]["version"] == version + 1
    [change] = by_batch["history"]
    assert (change["from_stage"], change["reason"], change["checklist"]["criteria"][
        "finalizing.purchase_order_recorded"]["met"]) == (
        Stage.FINALIZING, "Finalizing Closure timed out.", True)
    [notice] = by_batch["notifications"]
    assert notice["subject"] == f"{opportunity.name} nach „Tot (geparkt)“ verschoben"


def test_each_parked_history_row_keeps_the_checklist_exactly_as_the_opportunity_shows_it():
    """The batch builds snapshots in the database (parked_history.py); they must read as
    `checklist_snapshot` reads the same data, whatever the data looks like."""
    full = overdue(Stage.FINALIZING)
    satisfy_gate(full)
    committee = overdue(Stage.CONFIRMING)
    committee.add_committee_member(ContactFactory(account=committee.account), by=committee.owner)
    confirmed = ContactFactory(account=committee.account)
    committee.add_committee_member(confirmed, by=committee.owner)
    committee.record_preferred_vendor(confirmed, by=committee.owner)
    plain = overdue(Stage.DISCOVERING)
    plan_call(plain)  # stage 1's derived criterion met, on a later stage's deal
    # Evidence with quotes, line breaks and umlauts; a tick on a whole second (isoformat
    # drops the fraction then); a revoked tick, which must not show.
    tick = CriterionTick.objects.filter(opportunity=full, revoked_at__isnull=True).first()
    CriterionTick.objects.filter(pk=tick.pk).update(
        note='Said "yes" in the call\n— Größe: “all”', ticked_at=tick.ticked_at.replace(
            microsecond=0))
    CriterionTick.objects.filter(opportunity=plain).exclude(pk=CriterionTick.objects.filter(
        opportunity=plain).first().pk).update(revoked_at=timezone.now())
    Opportunity.objects.filter(pk__in=[full.pk, committee.pk, plain.pk]).update(
        stage_deadline=timezone.now() - timedelta(days=1),
        changed_at=timezone.now() - timedelta(days=10))
    expected = {opportunity.pk: Opportunity.objects.get(pk=opportunity.pk).checklist_snapshot()
                for opportunity in (full, committee, plain)}

    assert Opportunity.park_overdue(timezone.now()) == (3, [])

    assert dict(StageChange.objects.filter(via=Via.TIMEOUT).values_list(
        "opportunity_id", "checklist")) == expected
    assert expected[plain.pk]["criteria"]["identifying.next_call_scheduled"]["met"] is True
    assert {member["confirmed_on"] is None for member in expected[committee.pk]["committee"]} \
        == {True, False}


def test_every_batch_of_a_sweep_is_parked_and_nothing_twice():
    parked = [overdue() for _ in range(5)]
    kept = overdue(days_over=-3)  # its deadline is still ahead
    # Three share a deadline: a batch ends between two of them.
    Opportunity.objects.filter(pk__in=[o.pk for o in parked[1:4]]).update(
        stage_deadline=parked[1].stage_deadline)

    assert Opportunity.park_overdue(timezone.now(), batch_size=2) == (5, [])
    assert Opportunity.park_overdue(timezone.now(), batch_size=2) == (0, [])

    assert sorted(Opportunity.objects.filter(stage=Stage.DEAD).values_list("pk", flat=True)) \
        == sorted(opportunity.pk for opportunity in parked)
    assert StageChange.objects.filter(via=Via.TIMEOUT).count() == 5
    assert Opportunity.objects.get(pk=kept.pk).stage == Stage.DISCOVERING


def test_the_oldest_deadlines_are_parked_first():
    newer = overdue(days_over=1)
    older = overdue(days_over=20)
    assert Opportunity.park_batch(timezone.now(), 1) == ([older.pk], older.stage_deadline)
    assert Opportunity.objects.get(pk=newer.pk).stage == Stage.DISCOVERING


# --- at the same time as another sweep, or a rep ---


def run_together(*actions) -> list:
    """Run each action in its own thread and database connection, started together;
    what each returned, or the exception it raised."""
    start = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        try:
            start.wait()
            results[index] = action()
        except Exception as error:  # the test looks at it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, action))
               for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_once_park_each_opportunity_once(postgresql):
    opportunities = [overdue() for _ in range(12)]
    now = timezone.now()

    first, second = run_together(lambda: Opportunity.park_overdue(now, batch_size=2),
                                 lambda: Opportunity.park_overdue(now, batch_size=2))

    assert first[1] == second[1] == []
    assert first[0] + second[0] == 12
    for opportunity in opportunities:
        stored = Opportunity.objects.get(pk=opportunity.pk)
        assert (stored.stage, stored.version) == (Stage.DEAD, opportunity.version + 1)
        assert StageChange.objects.filter(opportunity=opportunity, to_stage=Stage.DEAD).count() \
            == 1
        assert Notification.objects.filter(link=opportunity.get_absolute_url()).count() == 1


def reps_move_back(opportunity: Opportunity, version: int) -> None:
    opportunity.move_to(Stage.IDENTIFYING, by=opportunity.owner, via=Via.BOARD,
                        reason="The customer restarts the project", expected_version=version)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_card_a_rep_is_moving_is_left_to_the_rep_and_the_rest_is_parked(postgresql):
    others = [overdue() for _ in range(5)]
    contested = overdue()
    version = contested.version
    now = timezone.now()
    locked, swept = threading.Event(), threading.Event()

    def rep_moves_while_the_sweep_runs():
        with transaction.atomic():  # the row is locked as a move locks it
            Opportunity.objects.select_for_update().get(pk=contested.pk)
            locked.set()
            swept.wait(timeout=30)
            reps_move_back(contested, version)

    rep = threading.Thread(target=lambda: (rep_moves_while_the_sweep_runs(),
                                           connections.close_all()))
    rep.start()
    locked.wait(timeout=30)
    try:
        result = Opportunity.park_overdue(now, batch_size=2)
    finally:
        swept.set()
        rep.join()

    assert result == (5, [])
    assert all(Opportunity.objects.get(pk=other.pk).stage == Stage.DEAD for other in others)
    stored = Opportunity.objects.get(pk=contested.pk)
    assert (stored.stage, stored.version) == (Stage.IDENTIFYING, version + 1)
    assert list(StageChange.objects.filter(opportunity=contested, changed_at__gte=now)
                .values_list("from_stage", "to_stage")) == [
        (Stage.DISCOVERING, Stage.IDENTIFYING)]


def test_a_rep_moving_a_card_the_sweep_just_parked_is_told_and_changes_nothing():
    contested = overdue()
    version = contested.version
    now = timezone.now()
    assert Opportunity.park_overdue(now) == (1, [])

    with pytest.raises(ChangeRefused, match="was changed by the system"):
        reps_move_back(contested, version)

    stored = Opportunity.objects.get(pk=contested.pk)
    assert (stored.stage, stored.version) == (Stage.DEAD, version + 1)
    assert list(StageChange.objects.filter(opportunity=contested, changed_at__gte=now)
                .values_list("from_stage", "to_stage")) == [(Stage.DISCOVERING, Stage.DEAD)]


# --- a sweep killed half-way, and started again ---

KILLED_SWEEP = Path(__file__).with_name("killed_sweep.py")


def run_killed_sweep(kill_at: str, batch_size: int) -> subprocess.CompletedProcess:
    """Run a sweep in another process on the test database; it dies at `kill_at`."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings",
           "DATABASE_URL": worker_database_url(), "PYTHONPATH": str(settings.BASE_DIR)}
    return subprocess.run([sys.executable, str(KILLED_SWEEP), kill_at, str(batch_size)],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=settings.BASE_DIR)


@pytest.mark.postgres
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("kill_at", ["after-first-batch", "inside-first-batch"])
def test_a_sweep_killed_half_way_and_run_again_parks_each_once(postgresql, kill_at):
    opportunities = [overdue() for _ in range(7)]

    killed = run_killed_sweep(kill_at, batch_size=3)

    assert killed.returncode == 9, killed.stderr
    dead_after_crash = Opportunity.objects.filter(stage=Stage.DEAD).count()
    assert dead_after_crash == (3 if kill_at == "after-first-batch" else 0)
    # Whatever died with the process died whole: no history without its parked row.
    assert StageChange.objects.filter(via=Via.TIMEOUT).count() == dead_after_crash

    assert Opportunity.park_overdue(timezone.now()) == (7 - dead_after_crash, [])

    for opportunity in opportunities:
        stored = Opportunity.objects.get(pk=opportunity.pk)
        assert (stored.stage, stored.version) == (Stage.DEAD, opportunity.version + 1)
        assert StageChange.objects.filter(opportunity=opportunity, to_stage=Stage.DEAD).count() \
            == 1
        assert Notification.objects.filter(link=opportunity.get_absolute_url()).count() == 1
