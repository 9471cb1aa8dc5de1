from celery import shared_task

from forecasting.snapshots import Snapshot


@shared_task
def take_weekly_snapshot() -> int:
    """This week's snapshot of the open pipeline, unless it is taken already: beat runs
    it hourly, so a week is not lost to a beat that was down on Monday morning. How many
    opportunities it copied (0 when there was one)."""
    snapshot, taken = Snapshot.take(Snapshot.week_slot())
    return snapshot.rows if taken else 0
