"""Demo calls, meetings and e-mails on the open opportunities, so the board's cards show
what is planned next rather than "Nothing planned" everywhere.

Run by `seed_demo` once the opportunities are written: most open deals had a conversation
since they entered their stage, and most have one planned within the next two weeks (in
Identifying, that meets "the next call is scheduled"). Written in bulk like the rest of the
demo data (stack-notes allow that for seed code only); only opportunities of this run,
those without any activity yet, get some.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from pipeline.management.bulk_rows import BATCH_SIZE
from pipeline.models import Activity, ActivityKind, ActivityStatus, Opportunity

DONE_SUBJECTS = ["Intro call", "Follow-up on the demo", "Sent the one-pager",
                 "Pricing questions", "Check-in with the champion"]
PLANNED_SUBJECTS = ["Next call", "Scoping workshop", "Demo for the team",
                    "Walk through the proposal", "Reference call"]


def create_activities(rng: random.Random) -> dict[str, int]:
    """A done and a planned activity for most open demo opportunities; returns the row
    count."""
    now = timezone.now()
    rows = []
    opportunities = (Opportunity.objects.open().filter(activities__isnull=True)
                     .order_by("pk").values_list("pk", "owner_id", "stage_entered_at"))
    for pk, owner_id, entered in opportunities:
        if rng.random() < 0.7:
            since = max(entered, now - timedelta(days=30))
            at = since + (now - timedelta(hours=1) - since) * rng.random()
            rows.append(Activity(
                opportunity_id=pk, kind=rng.choice([ActivityKind.CALL, ActivityKind.EMAIL]),
                at=at, subject=rng.choice(DONE_SUBJECTS), status=ActivityStatus.DONE,
                logged_at=at, logged_by_id=owner_id, closed_at=at, closed_by_id=owner_id,
            ))
        if rng.random() < 0.75:
            day = timezone.localtime(now) + timedelta(days=rng.randint(1, 14))
            at = day.replace(hour=rng.randint(9, 16), minute=0, second=0, microsecond=0)
            rows.append(Activity(
                opportunity_id=pk, kind=rng.choice([ActivityKind.CALL, ActivityKind.MEETING]),
                at=at, subject=rng.choice(PLANNED_SUBJECTS), status=ActivityStatus.PLANNED,
                logged_at=now, logged_by_id=owner_id,
            ))
    Activity.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    return {"activities": len(rows)}
