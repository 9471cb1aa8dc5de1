from celery import shared_task

from crm.models import Notification


@shared_task(bind=True, max_retries=5, default_retry_delay=30)
def deliver_notification(self, notification_id: int) -> bool:
    """E-mail one notification; safe to run twice, retried when the mail server fails."""
    try:
        return Notification.deliver(notification_id)
    except Exception as error:
        raise self.retry(exc=error) from error


@shared_task
def deliver_pending_notifications() -> int:
    """Sweep the outbox for what a down broker or mail server left behind."""
    delivered = 0
    for pk in Notification.undelivered().values_list("pk", flat=True).iterator():
        try:
            delivered += Notification.deliver(pk)
        except Exception:
            continue
    return delivered
