from celery import shared_task
from django.utils import timezone

from pipeline.models import Opportunity


@shared_task
def park_overdue_opportunities() -> int:
    """Park every opportunity past its stage deadline; safe to run twice at once."""
    now = timezone.now()
    parked = 0
    for pk in Opportunity.objects.due_for_parking(now).values_list("pk", flat=True).iterator():
        parked += Opportunity.park_if_still_overdue(pk, now)
    return parked


@shared_task
def warn_owners_of_deadlines() -> int:
    """Warn each owner once before their opportunity's stage deadline; safe to rerun."""
    now = timezone.now()
    warned = 0
    for pk in Opportunity.objects.due_for_warning(now).values_list("pk", flat=True).iterator():
        warned += Opportunity.warn_if_still_due(pk, now)
    return warned
