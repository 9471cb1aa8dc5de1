"""Calibration: does "60 % at Confirming" hold in our own data? For each stage, of the
opportunities that stood in it during four quarters and have since been decided (won or
parked as dead), the share that was won, beside the stage's probability from the process,
and the same split by the days they spent in the stage (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils.translation import gettext_lazy as _

from forecasting.stage_history import SECONDS_PER_DAY, local_midnight, stage_at, visits_sql
from pipeline.models import OpportunityQuerySet
from pipeline.process import ORDERED_STAGES, PROCESS, Stage

# Fewer decided opportunities than this and a share says more about chance than about
# the stage: with 20, a true 60 % still shows anywhere between about 40 % and 80 %.
MINIMUM_SAMPLE = 20

# Days spent in the stage, as (label, last day of the bucket or None for open-ended).
DAY_BUCKETS: tuple[tuple[str, int | None], ...] = (
    (_("0–30 days"), 30), (_("31–60 days"), 60), (_("61–90 days"), 90),
    (_("over 90 days"), None),
)

# Closed is 100 % by definition and Dead stands outside the process.
CALIBRATED_STAGES: tuple[Stage, ...] = ORDERED_STAGES[:-1]

CALIBRATION = """
WITH {visits},
stood AS (
    SELECT opportunity_id, stage_order, SUM(seconds) / {day} AS days
    FROM visits
    WHERE stage_order < {closed_order} AND entered_at < %s
          AND (left_at IS NULL OR left_at > %s)
    GROUP BY opportunity_id, stage_order
)
SELECT stood.stage_order, {bucket} AS bucket,
       SUM(CASE WHEN outcome.stage = '{won}' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome.stage IN ('{won}', '{dead}') THEN 1 ELSE 0 END),
       COUNT(*)
FROM stood JOIN {opportunity} outcome ON outcome.id = stood.opportunity_id
GROUP BY stood.stage_order, {bucket}
"""


def bucket_sql(column: str) -> str:
    """SQL for the index of DAY_BUCKETS that `column` (whole days) falls in; NULL for an
    opportunity still in its only stay, whose days are not known yet."""
    whens = " ".join(f"WHEN {column} <= {last} THEN {index}"
                     for index, (_label, last) in enumerate(DAY_BUCKETS) if last is not None)
    return f"CASE WHEN {column} IS NULL THEN NULL {whens} ELSE {len(DAY_BUCKETS) - 1} END"


@dataclass
class Tally:
    """Opportunities that stood in a stage: decided ones (won or dead), how many of them
    were won, and how many are still open (not counted in the share)."""

    won: int = 0
    decided: int = 0
    still_open: int = 0

    @property
    def enough(self) -> bool:
        return self.decided >= MINIMUM_SAMPLE

    @property
    def share(self) -> int | None:
        """Percent won of the decided, or None with too little history to say."""
        if not self.enough:
            return None
        return int((Decimal(100 * self.won) / self.decided).quantize(Decimal(1),
                                                                     ROUND_HALF_UP))

    def add(self, won: int, decided: int, stood: int) -> None:
        self.won += won
        self.decided += decided
        self.still_open += stood - decided


@dataclass
class CalibrationRow:
    stage: Stage
    total: Tally = field(default_factory=Tally)
    buckets: list[Tally] = field(default_factory=lambda: [Tally() for _ in DAY_BUCKETS])

    @property
    def probability(self) -> int:
        return PROCESS[self.stage].probability


def calibration(opportunities: OpportunityQuerySet, first: date, after: date
                ) -> list[CalibrationRow]:
    """For each stage from Identifying to Pending, the opportunities that stood in it at
    some time from `first` up to `after`, by their outcome today and by the whole days
    they spent in the stage (all their stays that overlap those days). One query."""
    start, end = local_midnight(first), local_midnight(after)
    # Unlike the funnel's, the whole history is read: over four quarters, narrowing it to
    # the opportunities whose stays can overlap them leaves out few and, measured, made
    # PostgreSQL's plan three times slower (docs/benchmarks.md).
    visits, params = visits_sql(opportunities)
    sql = CALIBRATION.format(
        visits=visits, day=SECONDS_PER_DAY, closed_order=PROCESS[Stage.CLOSED].order,
        bucket=bucket_sql("stood.days"), won=Stage.CLOSED.value, dead=Stage.DEAD.value,
        opportunity=connection.ops.quote_name(
            opportunities.model._meta.db_table),
    )
    rows = {stage: CalibrationRow(stage) for stage in CALIBRATED_STAGES}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, end, start])
        for place, bucket, won, decided, stood in cursor.fetchall():
            row = rows[stage_at(place)]
            row.total.add(won, decided, stood)
            if bucket is not None:
                row.buckets[bucket].add(won, decided, stood)
    return list(rows.values())
