import logging
from collections.abc import Callable, Iterable

from celery import shared_task
from django.utils import timezone

from pipeline.models import ActivityRule, ImportBatch, Opportunity

logger = logging.getLogger(__name__)


@shared_task
def park_overdue_opportunities() -> int:
    """Park every opportunity past its stage deadline, in batches; safe to run twice at
    once and to run again after a crash. How many were parked.

    Strong reasons (customer activity, a doubled amount) are judged first: an
    opportunity that earned an extension is no longer overdue."""
    now = timezone.now()
    extend_for_strong_reasons(now)
    parked, failed = Opportunity.park_overdue(now)
    if failed:
        logger.error("Failed parking %d opportunities; %d done", len(failed), parked)
    return parked


def extend_for_strong_reasons(now) -> int:
    """Give each overdue opportunity the extensions its strong reasons earned, before
    parking; how many got one."""
    rule = ActivityRule.current()
    candidates = Opportunity.may_have_strong_reasons(now, rule).values_list("pk", flat=True)
    return each_opportunity(list(candidates),
                            lambda pk: Opportunity.extend_if_earned(pk, now, rule),
                            doing="extending the deadline of")


@shared_task
def warn_owners_of_deadlines() -> int:
    """Warn each owner once before their opportunity's stage deadline; safe to rerun."""
    now = timezone.now()
    due = Opportunity.objects.due_for_warning(now).values_list("pk", flat=True)
    return each_opportunity(list(due), lambda pk: Opportunity.warn_if_still_due(pk, now),
                            doing="warning the owner of")


def each_opportunity(pks: Iterable[int], handle: Callable[[int], bool], *, doing: str) -> int:
    """Handle every opportunity, one transaction each; how many were handled.

    One row that fails is logged with its id and left for the next run: it must not
    keep every other overdue opportunity from being parked or warned about.
    """
    handled = failed = 0
    for pk in pks:
        try:
            handled += handle(pk)
        except Exception:
            failed += 1
            logger.exception("Failed %s opportunity %s; the next run tries again", doing, pk)
    if failed:
        logger.error("Failed %s %d opportunities; %d done", doing, failed, handled)
    return handled


@shared_task(acks_late=True)
def import_file(batch_id: int) -> None:
    """Commit a queued import; safe to deliver twice (the import is claimed under a lock
    and its rows are found by their source ids)."""
    from pipeline.imports.commit import run_import

    run_import(batch_id)


@shared_task
def forget_abandoned_import_files() -> int:
    """Daily: drop the uploaded files no import will read again."""
    return ImportBatch.forget_abandoned_files(timezone.now())
