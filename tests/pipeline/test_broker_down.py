"""With the broker down (a port where nothing listens), a rep's move and the timeout sweep
still succeed; their notifications wait in the outbox and go out once the broker answers
again (docs/celery.md)."""

import pytest
from django.core import mail
from django.utils import timezone

from crm.models import Notification
from crm.tasks import deliver_notifications, deliver_pending_notifications
from pipeline.models import Opportunity
from pipeline.process import Stage
from tests.celery_worker import (
    CLOSED_PORT_BROKER,
    broker,
    celery_worker,
    needs_postgresql_and_redis,
    wait_until,
)
from tests.crm.test_notifications import clean_redis, emailed_files, read_email  # noqa: F401
from tests.factories import OpportunityFactory, RepFactory, SalesOpsFactory, advance, satisfy_gate
from tests.pipeline.test_board import board_move
from tests.pipeline.test_parking import overdue


def is_emailed(pk: int) -> bool:
    return Notification.objects.filter(pk=pk, emailed_at__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_reps_move_with_the_broker_down_succeeds_and_is_emailed_when_it_is_back(
    postgresql, clean_redis, client, tmp_path  # noqa: F811
):
    rep = RepFactory()
    reviewer = SalesOpsFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.FINALIZING)
    satisfy_gate(opportunity)  # the purchase order is recorded
    client.force_login(rep)

    with broker(CLOSED_PORT_BROKER):
        response = board_move(client, opportunity, "pending")

    assert response.status_code == 200
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.PENDING
    notification = Notification.objects.get(recipient=reviewer)
    assert notification.emailed_at is None

    with celery_worker(broker_url=clean_redis, folder=tmp_path, beat=True) as celery:
        wait_until(lambda: is_emailed(notification.pk) and emailed_files(tmp_path),
                   "beat's outbox sweep to e-mail the notification", celery)

    [path] = emailed_files(tmp_path)
    email = read_email(path)
    assert (email["To"], email["Subject"]) == (reviewer.email, notification.subject)


@pytest.mark.django_db
def test_a_sweep_with_the_broker_down_parks_and_leaves_its_emails_to_the_outbox(
    django_capture_on_commit_callbacks, caplog
):
    parked = [overdue() for _ in range(3)]

    with broker(CLOSED_PORT_BROKER), django_capture_on_commit_callbacks(
            execute=True) as published:
        assert Opportunity.park_overdue(timezone.now(), batch_size=2) == (3, [])

    assert len(published) == 2  # one delivery task per batch, not per notification
    assert "stays in the outbox for the sweep" in caplog.text
    assert sorted(Notification.objects.filter(emailed_at__isnull=True)
                  .values_list("recipient_id", flat=True)) == sorted(
        opportunity.owner_id for opportunity in parked)
    assert mail.outbox == []

    assert deliver_pending_notifications() == 3
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        opportunity.owner.email for opportunity in parked)
    assert deliver_pending_notifications() == 0


@pytest.mark.django_db
def test_a_sweeps_batch_is_emailed_by_one_task_once():
    parked = [overdue() for _ in range(2)]
    Opportunity.park_overdue(timezone.now())
    pks = list(Notification.objects.values_list("pk", flat=True))

    assert deliver_notifications(pks) == 2
    assert deliver_notifications(pks) == 0
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        opportunity.owner.email for opportunity in parked)
