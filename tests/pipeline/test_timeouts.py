"""Celery beat parks opportunities that overstay their stage, unless a strong reason keeps
them (process.md, "Timeouts and the dead pool")."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from pipeline.models import Opportunity, StageChange, Via
from pipeline.process import DeadReason, Stage
from pipeline.tasks import park_overdue_opportunities, warn_owners_of_deadlines
from tests.celery_worker import (
    celery_worker,
    flush_redis,
    needs_postgresql_and_redis,
    wait_until,
)
from tests.factories import ManagerFactory, OpportunityFactory, advance

pytestmark = pytest.mark.django_db


def overdue_in_discovering(days_over: int = 1, quiet_days: int = 10) -> Opportunity:
    """An opportunity in Discovering whose deadline passed `days_over` days ago and that
    nobody touched for `quiet_days` days."""
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.DISCOVERING)
    now = timezone.now()
    Opportunity.objects.filter(pk=opportunity.pk).update(
        stage_deadline=now - timedelta(days=days_over),
        changed_at=now - timedelta(days=quiet_days),
    )
    opportunity.reload()
    return opportunity


def test_an_overdue_opportunity_is_parked_as_dead_by_the_system():
    opportunity = overdue_in_discovering()
    assert park_overdue_opportunities() == 1
    opportunity.reload()
    assert (opportunity.stage, opportunity.dead_reason) == (Stage.DEAD, DeadReason.TIMEOUT)
    change = StageChange.objects.filter(opportunity=opportunity).last()
    assert (change.from_stage, change.to_stage, change.changed_by, change.via) == (
        Stage.DISCOVERING, Stage.DEAD, None, Via.TIMEOUT)
    assert "timed out" in change.reason
    assert opportunity.owner.notifications.filter(subject__contains="Dead").exists()


def test_a_second_sweep_finds_nothing_left_to_park():
    overdue_in_discovering()
    assert park_overdue_opportunities() == 1
    assert park_overdue_opportunities() == 0
    assert StageChange.objects.filter(via=Via.TIMEOUT).count() == 1


def test_a_field_edit_no_longer_keeps_an_overdue_opportunity():
    """Only work with the customer and growth keep one (tests/pipeline/test_strong_reasons)."""
    opportunity = overdue_in_discovering(quiet_days=0)
    opportunity.update_details(by=opportunity.owner, next_step="Chase them again")
    assert park_overdue_opportunities() == 1
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DEAD


def test_an_opportunity_within_its_timeout_or_without_one_is_left_alone():
    in_time = OpportunityFactory()
    advance(in_time, Stage.DISCOVERING)
    OpportunityFactory()  # Identifying has no timeout
    assert park_overdue_opportunities() == 0


def test_an_extension_granted_in_time_saves_it():
    opportunity = overdue_in_discovering(days_over=1)
    manager_grants = Opportunity.objects.filter(pk=opportunity.pk)
    manager_grants.update(stage_deadline=timezone.now() + timedelta(days=5))
    assert park_overdue_opportunities() == 0



LONGEST_NAME = "Group-wide rollout " + "x" * 181  # the 200 characters the form allows


def refuse_writes_for(table: str, column: str, value: int) -> None:
    """Make PostgreSQL refuse inserts into `table` where `column` is `value`: a row that
    fails for a reason of its own. Undone with the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_for_the_test() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'refused for the test'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER refuse_for_the_test BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN (NEW.{column} = %s) EXECUTE FUNCTION refuse_for_the_test()", [value]
        )


def test_a_deal_with_the_longest_name_is_parked_and_its_owner_told(postgresql):
    opportunity = overdue_in_discovering()
    Opportunity.objects.filter(pk=opportunity.pk).update(name=LONGEST_NAME)

    assert park_overdue_opportunities() == 1

    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DEAD
    [notice] = opportunity.owner.notifications.all()
    assert notice.subject.startswith(LONGEST_NAME)


def test_one_opportunity_that_cannot_be_parked_does_not_stop_the_sweep(postgresql, caplog):
    failing, *others = [overdue_in_discovering() for _ in range(3)]
    refuse_writes_for("pipeline_stagechange", "opportunity_id", failing.pk)

    assert park_overdue_opportunities() == 2

    assert [Opportunity.objects.get(pk=o.pk).stage for o in others] == [Stage.DEAD] * 2
    stuck = Opportunity.objects.get(pk=failing.pk)
    assert (stuck.stage, stuck.stage_deadline) == (Stage.DISCOVERING, failing.stage_deadline)
    assert f"opportunity {failing.pk}" in caplog.text
    assert "Failed parking 1 opportunities; 2 done" in caplog.text


def test_one_owner_who_cannot_be_warned_does_not_stop_the_warnings(postgresql, caplog):
    failing, *others = [deadline_in(days=3) for _ in range(3)]
    refuse_writes_for("crm_notification", "recipient_id", failing.owner_id)

    assert warn_owners_of_deadlines() == 2

    assert all(o.owner.notifications.filter(subject__contains="about to time out").exists()
               for o in others)
    assert Opportunity.objects.get(pk=failing.pk).deadline_warned_at is None
    assert f"opportunity {failing.pk}" in caplog.text


def test_the_owner_of_the_longest_name_is_warned(postgresql):
    soon = deadline_in(days=3)
    Opportunity.objects.filter(pk=soon.pk).update(name=LONGEST_NAME)
    assert warn_owners_of_deadlines() == 1
    assert soon.owner.notifications.get().subject.startswith(LONGEST_NAME)


def deadline_in(days: float) -> Opportunity:
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.DISCOVERING)
    Opportunity.objects.filter(pk=opportunity.pk).update(
        stage_deadline=timezone.now() + timedelta(days=days))
    opportunity.reload()
    return opportunity


def test_the_owner_is_warned_once_before_the_deadline():
    soon = deadline_in(days=3)
    deadline_in(days=20)  # not yet
    assert warn_owners_of_deadlines() == 1
    assert warn_owners_of_deadlines() == 0
    [warning] = soon.owner.notifications.filter(subject__contains="about to time out")
    assert soon.name in warning.body and "Discovering" in warning.body


def test_an_extension_earns_a_new_warning_before_the_new_deadline():
    soon = deadline_in(days=3)
    warn_owners_of_deadlines()
    manager = ManagerFactory(team=soon.owner.team)
    soon.grant_extension(1, by=manager, reason="Waiting for the customer's board")
    assert Opportunity.objects.get(pk=soon.pk).deadline_warned_at is None
    assert warn_owners_of_deadlines() == 1


def test_an_overdue_opportunity_gets_parked_not_warned():
    overdue_in_discovering()
    assert warn_owners_of_deadlines() == 0


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_beat_and_a_real_worker_park_an_overdue_opportunity(postgresql, redis_url, tmp_path):
    opportunity = overdue_in_discovering()
    flush_redis(redis_url)
    try:
        with celery_worker(broker_url=redis_url, folder=tmp_path, beat=True) as celery:
            wait_until(
                lambda: Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DEAD,
                "beat's sweep to park the overdue opportunity",
                celery,
            )
            # The sweep commits the parking before it returns and the worker logs its
            # success: the row can be seen a moment before the log line.
            wait_until(
                lambda: re.search(
                    r"Task pipeline\.tasks\.park_overdue_opportunities\[[^\]]+\] succeeded",
                    celery.log(),
                ),
                "the worker to log the sweep's success",
                celery,
            )
    finally:
        flush_redis(redis_url)
    assert StageChange.objects.filter(opportunity=opportunity, via=Via.TIMEOUT).count() == 1


def test_the_deadline_warning_writes_dates_and_times_the_owner_s_way():
    """Issue 14: one format, the reader's, in notifications and e-mails too (tests run in
    UTC)."""
    opportunity = deadline_in(days=3)
    owner = opportunity.owner
    owner.language = "de"
    owner.save(update_fields=["language"])
    entered = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    deadline = datetime(2026, 12, 5, 17, 45, tzinfo=UTC)
    Opportunity.objects.filter(pk=opportunity.pk).update(stage_entered_at=entered,
                                                         stage_deadline=deadline)

    assert Opportunity.warn_if_still_due(opportunity.pk, now=deadline - timedelta(days=2))

    [warning] = owner.notifications.all()
    assert "30.11.2026" in warning.body
    assert "05.12.2026 17:45" in warning.body
    assert "2026-12-05" not in warning.body
