"""The funnel: of the opportunities that entered a stage in a period, how many reached
the next stage, and the median days they spent in it (issue 12, docs/decisions.md).

Each opportunity counts once per stage, however often it came back to it in the period;
undone moves count not at all (forecasting.stage_history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Q

from forecasting.stage_history import SECONDS_PER_DAY, local_midnight, stage_at, visits_sql
from pipeline.models import OpportunityQuerySet, StageChange
from pipeline.process import ORDERED_STAGES, Stage

# Closed is the funnel's end: it has no next stage to reach.
FUNNEL_STAGES: tuple[Stage, ...] = ORDERED_STAGES[:-1]

FUNNEL = """
WITH {visits},
entered AS (
    SELECT opportunity_id, stage_order, MIN(entered_at) AS first_entered,
           MAX(beyond_at) AS beyond,
           SUM(seconds) AS seconds, COUNT(*) - COUNT(left_at) AS still_in
    FROM visits
    WHERE entered_at >= %s AND entered_at < %s AND stage_order IS NOT NULL
    GROUP BY opportunity_id, stage_order
),
settled AS (
    SELECT stage_order, seconds / {day} AS days,
           ROW_NUMBER() OVER (PARTITION BY stage_order ORDER BY seconds) AS position,
           COUNT(*) OVER (PARTITION BY stage_order) AS how_many
    FROM entered WHERE still_in = 0
),
medians AS (
    SELECT stage_order, AVG(days) AS median_days FROM settled
    WHERE position IN ((how_many + 1) / 2, (how_many + 2) / 2)
    GROUP BY stage_order
)
SELECT entered.stage_order, COUNT(*),
       SUM(CASE WHEN beyond >= first_entered THEN 1 ELSE 0 END),
       SUM(CASE WHEN still_in > 0 THEN 1 ELSE 0 END),
       MAX(medians.median_days)
FROM entered LEFT JOIN medians ON medians.stage_order = entered.stage_order
GROUP BY entered.stage_order
"""


@dataclass(frozen=True)
class FunnelRow:
    """One stage of the funnel. `median_days` is None when no opportunity left it yet."""

    stage: Stage
    entered: int = 0
    reached_next: int = 0
    still_in: int = 0
    median_days: Decimal | None = None

    @property
    def share(self) -> int | None:
        """Percent of those that entered which reached the next stage, None without any."""
        if not self.entered:
            return None
        return int((Decimal(100 * self.reached_next) / self.entered)
                   .quantize(Decimal(1), ROUND_HALF_UP))


def funnel(opportunities: OpportunityQuerySet, first: date, after: date) -> list[FunnelRow]:
    """The funnel of these opportunities for the days from `first` up to `after`: a row
    per stage from Identifying to Pending, in process order. One query.

    Reaching the next stage means entering any later stage along the process after the
    first entry in the period, even after the period ends: a forward move over stages is
    a sequence of single gated moves, so a skip only shows in imported history. Days
    spent are whole days, summed over the opportunity's visits that began in the period;
    an opportunity still in the stage has no days yet and is left out of the median.
    """
    start, end = local_midnight(first), local_midnight(after)
    # Only those created or moved in the period can have entered a stage in it.
    moved = StageChange.objects.filter(changed_at__gte=start, changed_at__lt=end)
    entering = opportunities.filter(
        Q(created_at__gte=start, created_at__lt=end)
        | Q(pk__in=moved.values("opportunity_id")))
    visits, params = visits_sql(entering, beyond=True)
    with connection.cursor() as cursor:
        cursor.execute(FUNNEL.format(visits=visits, day=SECONDS_PER_DAY),
                       [*params, start, end])
        found = {stage_at(row[0]): row for row in cursor.fetchall()}
    rows = []
    for stage in FUNNEL_STAGES:
        if stage not in found:
            rows.append(FunnelRow(stage))
            continue
        _stage, entered, reached, still_in, median = found[stage]
        rows.append(FunnelRow(
            stage, entered, reached, still_in,
            None if median is None else Decimal(str(median)).quantize(Decimal("0.1"),
                                                                      ROUND_HALF_UP)))
    return rows
