from celery import shared_task
from django.utils import timezone

from crm.models import fiscal_quarter
from forecasting.coverage import QUARTERS_LOOKED_BACK, previous_quarters
from forecasting.entering import stored_quarters
from forecasting.snapshots import Snapshot


@shared_task
def take_weekly_snapshot() -> int:
    """This week's snapshot of the open pipeline, unless it is taken already: beat runs
    it hourly, so a week is not lost to a beat that was down on Monday morning. How many
    opportunities it copied (0 when there was one).

    It also stores the entering pipeline of the last finished quarters, so that the first
    manager to open the dashboard in a new quarter does not wait for it to be rebuilt."""
    stored_quarters(previous_quarters(*fiscal_quarter(timezone.localdate()),
                                      QUARTERS_LOOKED_BACK))
    snapshot, taken = Snapshot.take(Snapshot.week_slot())
    return snapshot.rows if taken else 0
