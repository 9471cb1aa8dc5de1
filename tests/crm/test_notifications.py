"""The notification outbox: written with the change, e-mailed later, never lost, never twice."""

import os
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from django.core import mail
from django.db import connections, transaction

from crm.models import Notification, User
from crm.tasks import deliver_notification, deliver_pending_notifications
from pipeline.models import ChangeRefused, Opportunity, Via
from pipeline.process import Stage
from tests.celery_worker import (
    CLOSED_PORT_BROKER,
    broker,
    celery_worker,
    flush_redis,
    needs_postgresql_and_redis,
    wait_until,
)
from tests.factories import (
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    advance,
    satisfy_gate,
)

# Nothing listens on port 1: connecting fails at once with "connection refused".
CLOSED_PORT = 1


@dataclass
class Team:
    rep: User
    manager: User
    opportunity: Opportunity


def a_team_with_an_opportunity_ready_to_leave_identifying() -> Team:
    rep = RepFactory()
    manager = ManagerFactory(team=rep.team)
    opportunity = OpportunityFactory(owner=rep)
    satisfy_gate(opportunity)
    return Team(rep=rep, manager=manager, opportunity=opportunity)


@pytest.fixture
def team(db) -> Team:
    return a_team_with_an_opportunity_ready_to_leave_identifying()


def move_by_manager(team: Team) -> None:
    team.opportunity.move_to(Stage.DISCOVERING, by=team.manager, via=Via.BOARD)


def mail_server_down(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = CLOSED_PORT


def mail_server_back(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# --- written with the change that causes it ---


def test_a_managers_move_notifies_the_owner_in_the_same_transaction(
    team, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as after_commit:
        with transaction.atomic():
            move_by_manager(team)
            notification = Notification.objects.get()

    assert notification.recipient == team.rep
    assert notification.subject == (
        f"{team.opportunity.name} moved to {Stage.DISCOVERING.label}"
    )
    assert str(team.manager) in notification.body
    assert notification.link == team.opportunity.get_absolute_url()
    assert notification.emailed_at is None
    # Its e-mail is handed to the broker when the change commits, not before.
    assert len(after_commit) == 1


def test_a_refused_move_notifies_nobody(team):
    team.opportunity.ticks.all().delete()

    with pytest.raises(ChangeRefused):
        move_by_manager(team)

    assert not Notification.objects.exists()


def test_a_move_rolled_back_after_the_change_notifies_nobody(team):
    with pytest.raises(RuntimeError), transaction.atomic():
        move_by_manager(team)
        assert Notification.objects.filter(recipient=team.rep).exists()
        raise RuntimeError("something later in the same request failed")

    team.opportunity.reload()
    assert team.opportunity.stage == Stage.IDENTIFYING
    assert not Notification.objects.exists()


def test_owners_moving_their_own_opportunity_are_not_notified(team):
    team.opportunity.move_to(Stage.DISCOVERING, by=team.rep, via=Via.BOARD)

    assert not Notification.objects.exists()


def test_entering_pending_notifies_every_active_sales_ops_member_and_nobody_else(team):
    reviewers = [SalesOpsFactory(), SalesOpsFactory()]
    SalesOpsFactory(is_active=False)

    advance(team.opportunity, Stage.FINALIZING)
    assert not Notification.objects.exists()
    advance(team.opportunity, Stage.PENDING)

    assert sorted(Notification.objects.values_list("recipient", flat=True)) == sorted(
        reviewer.pk for reviewer in reviewers
    )
    assert set(Notification.objects.values_list("subject", flat=True)) == {
        f"{team.opportunity.name} moved to {Stage.PENDING.label}"
    }


def test_a_deal_with_the_longest_name_moves_and_reaches_pending_in_german(postgresql):
    """The longest name the form allows, in the language with the longest words around it:
    the move and its notifications are saved, nothing is cut from the name."""
    team = a_team_with_an_opportunity_ready_to_leave_identifying()
    name = "Konzernweite Einführung " + "x" * 176
    Opportunity.objects.filter(pk=team.opportunity.pk).update(name=name)
    team.opportunity.reload()
    User.objects.filter(pk=team.rep.pk).update(language="de")
    SalesOpsFactory(language="de")

    move_by_manager(team)
    advance(team.opportunity, Stage.PENDING)

    assert Opportunity.objects.get(pk=team.opportunity.pk).stage == Stage.PENDING
    subjects = list(Notification.objects.values_list("subject", flat=True))
    assert len(subjects) == 2 and all(subject.startswith(name) for subject in subjects)


def test_a_subject_with_line_breaks_is_sent_on_one_line(team):
    """A name stored before line breaks were refused must not make its e-mails fail."""
    notification = Notification.send(team.rep, "Rollout\r\nBcc: everyone moved", "Body")
    Notification.objects.filter(pk=notification.pk).update(subject="Rollout\nphase 2 moved")

    assert notification.subject == "Rollout Bcc: everyone moved"
    assert Notification.deliver(notification.pk) is True
    assert mail.outbox[0].subject == "Rollout phase 2 moved"


def test_a_new_owner_is_notified(team):
    new_owner = RepFactory(team=team.rep.team)

    team.opportunity.update_details(by=team.manager, owner=new_owner)

    notification = Notification.objects.get()
    assert notification.recipient == new_owner
    assert notification.subject == f"{team.opportunity.name} is now yours"
    assert str(team.manager) in notification.body


def test_changing_other_details_notifies_nobody(team):
    team.opportunity.update_details(by=team.manager, next_step="Call the CFO")

    assert not Notification.objects.exists()


# --- a broker that is down delays the e-mail, never the change ---


def test_with_the_broker_down_the_change_succeeds_and_the_sweep_emails_it_once(
    team, django_capture_on_commit_callbacks, caplog
):
    with broker(CLOSED_PORT_BROKER), django_capture_on_commit_callbacks(execute=True):
        move_by_manager(team)

    team.opportunity.reload()
    assert team.opportunity.stage == Stage.DISCOVERING
    notification = Notification.objects.get(recipient=team.rep)
    assert notification.emailed_at is None
    assert "stays in the outbox for the sweep" in caplog.text
    assert mail.outbox == []

    assert deliver_pending_notifications() == 1
    assert [message.to for message in mail.outbox] == [[team.rep.email]]
    assert mail.outbox[0].subject == notification.subject
    notification.refresh_from_db()
    assert notification.emailed_at is not None

    assert deliver_pending_notifications() == 0
    assert len(mail.outbox) == 1


# --- delivery: idempotent, retried, recorded ---


def test_delivering_a_notification_twice_sends_one_email(team):
    notification = Notification.send(team.rep, "Subject", "Body")

    assert Notification.deliver(notification.pk) is True
    assert Notification.deliver(notification.pk) is False
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_the_email_links_to_the_opportunity_at_the_sites_address(team, settings):
    settings.SITE_URL = "https://crm.example.com"
    move_by_manager(team)
    [notification] = Notification.objects.filter(recipient=team.rep)

    Notification.deliver(notification.pk)

    [email] = mail.outbox
    assert email.body.startswith(notification.body)
    assert email.body.endswith(
        f"\n\nhttps://crm.example.com/opportunities/{team.opportunity.pk}/"
    )


def test_a_recipient_without_an_address_is_not_retried(team):
    team.rep.email = ""
    team.rep.save()
    notification = Notification.send(team.rep, "Subject", "Body")

    assert Notification.deliver(notification.pk) is False
    assert mail.outbox == []
    assert Notification.due_for_delivery(notification.created_at + timedelta(days=1)) == []


def test_a_mail_server_error_leaves_it_undelivered_with_the_error_and_the_task_retries(
    team, settings
):
    notification = Notification.send(team.rep, "Subject", "Body")
    mail_server_down(settings)

    result = deliver_notification.apply(args=(notification.pk,))

    assert result.failed()
    notification.refresh_from_db()
    assert notification.emailed_at is None
    assert notification.attempts == 1 + deliver_notification.max_retries
    assert "refused" in notification.last_error.lower()


def test_after_mail_server_errors_the_sweep_waits_longer_then_sends_once(team, settings):
    notification = Notification.send(team.rep, "Subject", "Body")
    mail_server_down(settings)
    with pytest.raises(OSError):
        Notification.deliver(notification.pk)
    with pytest.raises(OSError):
        Notification.deliver(notification.pk)
    mail_server_back(settings)
    queued = notification.created_at

    # Two failures: the next try is four minutes after the notification was queued.
    assert Notification.deliver_due(now=queued + timedelta(minutes=3)) == 0
    assert Notification.deliver_due(now=queued + timedelta(minutes=4)) == 1
    assert Notification.deliver_due(now=queued + timedelta(minutes=60)) == 0

    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    assert notification.attempts == 3
    assert notification.last_error == ""


def test_the_sweep_gives_up_after_the_last_attempt_and_says_so(team, settings, caplog):
    notification = Notification.send(team.rep, "Subject", "Body")
    Notification.objects.filter(pk=notification.pk).update(
        attempts=Notification.MAX_ATTEMPTS - 1
    )
    mail_server_down(settings)

    assert Notification.deliver_due(now=notification.created_at + timedelta(days=7)) == 0

    notification.refresh_from_db()
    assert notification.attempts == Notification.MAX_ATTEMPTS
    assert f"Gave up e-mailing notification {notification.pk}" in caplog.text
    assert Notification.due_for_delivery(notification.created_at + timedelta(days=30)) == []


def in_another_connection(function, *args):
    """Run `function` in a thread, which has a database connection of its own: a second worker."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():
        raise AssertionError("the second worker waited for the first instead of moving on")
    return outcome["result"]


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL: set DATABASE_URL (CI always does)",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_worker_leaves_alone_a_notification_being_sent(postgresql):
    rep = RepFactory()
    with broker(CLOSED_PORT_BROKER):
        notification = Notification.send(rep, "Subject", "Body")

    with transaction.atomic():
        # What the first worker holds while its e-mail goes out.
        Notification.objects.select_for_update().get(pk=notification.pk)
        assert in_another_connection(Notification.deliver, notification.pk) is False

    assert mail.outbox == []
    assert Notification.deliver(notification.pk) is True
    assert len(mail.outbox) == 1


# --- a real worker on Redis and PostgreSQL ---


# Skipping from inside the `postgresql` or `redis_url` fixture comes after the transactional
# database is set up, and its flush afterwards would still wipe the role groups that later
# transactional tests expect; so decide before any database work.


@pytest.fixture
def clean_redis(redis_url):
    flush_redis(redis_url)
    yield redis_url
    flush_redis(redis_url)


def emailed_files(folder):
    return sorted((folder / "mail").glob("*.log"))


def read_email(path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def ran_successfully(task_name: str, celery) -> bool:
    return re.search(rf"Task {re.escape(task_name)}\[[^\]]+\] succeeded", celery.log()) is not None


def is_emailed(notification: Notification) -> bool:
    return Notification.objects.filter(pk=notification.pk, emailed_at__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_emails_what_a_change_queued(postgresql, clean_redis, tmp_path):
    team = a_team_with_an_opportunity_ready_to_leave_identifying()

    with broker(clean_redis), celery_worker(broker_url=clean_redis, folder=tmp_path) as celery:
        move_by_manager(team)
        notification = Notification.objects.get(recipient=team.rep)
        wait_until(
            lambda: is_emailed(notification) and emailed_files(tmp_path),
            "the worker to e-mail the notification",
            celery,
        )

    [path] = emailed_files(tmp_path)
    email = read_email(path)
    assert email["To"] == team.rep.email
    assert email["Subject"] == notification.subject
    assert ran_successfully("crm.tasks.deliver_notification", celery)


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_beat_and_a_real_worker_email_what_the_broker_missed(postgresql, clean_redis, tmp_path):
    team = a_team_with_an_opportunity_ready_to_leave_identifying()
    with broker(CLOSED_PORT_BROKER):
        move_by_manager(team)
    notification = Notification.objects.get(recipient=team.rep)

    with celery_worker(broker_url=clean_redis, folder=tmp_path, beat=True) as celery:
        wait_until(
            lambda: is_emailed(notification) and emailed_files(tmp_path),
            "beat's sweep to e-mail the notification",
            celery,
        )

    [path] = emailed_files(tmp_path)
    assert read_email(path)["To"] == team.rep.email
    assert ran_successfully("crm.tasks.deliver_pending_notifications", celery)


@pytest.mark.django_db
def test_notifications_are_written_in_the_recipients_language(client):
    opportunity = OpportunityFactory()
    manager = ManagerFactory(team=opportunity.owner.team)
    client.force_login(opportunity.owner)
    client.post("/language/", {"language": "de", "next": "/"})
    satisfy_gate(opportunity)
    opportunity.move_to("discovering", by=manager, via="page")
    notification = opportunity.owner.notifications.get()
    assert "verschoben" in notification.body
    assert opportunity.owner.__class__.objects.get(pk=opportunity.owner.pk).language == "de"


def test_the_top_bar_counts_unread_notifications_until_they_are_read(client, team):
    second = OpportunityFactory(owner=team.rep)
    satisfy_gate(second)
    move_by_manager(team)
    second.move_to(Stage.DISCOVERING, by=team.manager, via=Via.BOARD)
    client.force_login(team.rep)

    def badge() -> str:
        match = re.search(r'<span class="badge">(\d+)', client.get("/board/").content.decode())
        return match.group(1) if match else ""

    assert badge() == "2"
    first = team.rep.notifications.order_by("created_at").first()
    response = client.get(f"/notifications/{first.pk}/")
    assert response["Location"] == f"/opportunities/{team.opportunity.pk}/"
    assert badge() == "1"
    client.get(f"/notifications/{first.pk}/")  # reading it again changes nothing
    assert badge() == "1"
    client.post("/notifications/read/")
    assert badge() == ""


def test_nobody_opens_someone_elses_notification(client, team):
    move_by_manager(team)
    notification = team.rep.notifications.get()
    client.force_login(RepFactory(team=team.rep.team))
    assert client.get(f"/notifications/{notification.pk}/").status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None
