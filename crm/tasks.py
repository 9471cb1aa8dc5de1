"""Celery tasks: thin wrappers, the models do the work."""

from celery import shared_task

from crm.models import Notification

# Waits between a task's own retries: 30 s, 1, 2, 4 and 8 minutes. After that the
# periodic sweep takes over with its own, longer back-off.
RETRY_DELAY_SECONDS = 30


@shared_task(bind=True, max_retries=5)
def deliver_notification(self, notification_id: int) -> bool:
    """E-mail one notification; safe to run twice, retried when the mail server fails."""
    try:
        return Notification.deliver(notification_id)
    except Exception as error:
        countdown = RETRY_DELAY_SECONDS * 2**self.request.retries
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task
def deliver_pending_notifications() -> int:
    """Sweep the outbox for what a down broker or mail server left behind."""
    return Notification.deliver_due()


@shared_task
def deliver_notifications(notification_ids: list[int]) -> int:
    """E-mail notifications queued together (a sweep's batch); safe to run twice. One the
    mail server refuses waits for the outbox sweep and its back-off."""
    return Notification.deliver_each(notification_ids)


@shared_task
def clear_expired_sessions() -> None:
    """Sessions end after a while idle; their rows go too, or the table only grows."""
    from django.core.management import call_command

    call_command("clearsessions")
