"""The stage history as visits: each stay of an opportunity in a stage, from the moment it
entered to the moment it left (or none yet), with undone moves taken out. The funnel and
the calibration read it as one SQL common table expression, so their query count does not
grow with the data (docs/decisions.md, "Funnel and calibration").

Why raw SQL: the visits need window functions over window functions (an undo marks the
moves it took back, then the remaining moves are paired with the next one), and Django's
ORM neither aggregates over window annotations nor selects from subqueries.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.db import connection
from django.utils import timezone

from pipeline.models import Opportunity, OpportunityQuerySet, StageChange
from pipeline.process import ORDERED_STAGES, PROCESS

SECONDS_PER_DAY = 86400


def seconds_between(later: str, earlier: str) -> str:
    """SQL for the whole seconds from `earlier` to `later` (never negative): PostgreSQL
    subtracts timestamps, SQLite counts Julian days."""
    if connection.vendor == "postgresql":
        return (f"GREATEST(CAST(ROUND(EXTRACT(EPOCH FROM ({later} - {earlier}))) AS BIGINT),"
                " 0)")
    return f"MAX(CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400) AS INTEGER), 0)"


def stage_order_sql(column: str) -> str:
    """SQL for a stage's place along the process (1 to 8), NULL for Dead; from PROCESS."""
    whens = " ".join(f"WHEN '{stage.value}' THEN {PROCESS[stage].order}"
                     for stage in ORDERED_STAGES)
    return f"CASE {column} {whens} END"


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


# Creation writes no StageChange: each opportunity gets a row of its own (sequence 0) for
# entering the stage it was created in, the first move's source or, without moves, where it
# stands. Sorting creation first keeps it first even when a move shares its timestamp.
VISITS = """
scope (id) AS ({scope}),
history AS (
    SELECT opportunity_id, from_stage, to_stage, changed_at, is_undo, id AS sequence,
           NULL AS current_stage
    FROM {stage_change} WHERE opportunity_id IN (SELECT id FROM scope)
    UNION ALL
    SELECT id, NULL, NULL, created_at, FALSE, 0, stage
    FROM {opportunity} WHERE id IN (SELECT id FROM scope)
),
ordered AS (
    SELECT opportunity_id, changed_at, sequence, is_undo,
           CASE WHEN sequence = 0 THEN COALESCE(LEAD(from_stage) OVER later, current_stage)
                ELSE to_stage END AS stage,
           LEAD(is_undo) OVER later AS followed_by_undo
    FROM history
    WINDOW later AS (PARTITION BY opportunity_id ORDER BY sequence <> 0, changed_at, sequence)
),
marked AS (
    SELECT ordered.*,
           MAX(CASE WHEN followed_by_undo THEN 1 ELSE 0 END) OVER (
               PARTITION BY opportunity_id, changed_at, sequence = 0) AS undone
    FROM ordered
),
kept AS (
    SELECT opportunity_id, changed_at, sequence, stage FROM marked
    WHERE NOT is_undo AND undone = 0
),
paired AS (
    SELECT opportunity_id, stage, {stage_order} AS stage_order, changed_at AS entered_at,
           LEAD(changed_at) OVER later AS left_at, sequence
    FROM kept
    WINDOW later AS (PARTITION BY opportunity_id ORDER BY sequence <> 0, changed_at, sequence)
),
visits AS (
    SELECT paired.*, {seconds} AS seconds,
           MAX(stage_order) OVER (
               PARTITION BY opportunity_id
               ORDER BY sequence <> 0 DESC, entered_at DESC, sequence DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS furthest_from_here
    FROM paired
)"""


def visits_sql(opportunities: OpportunityQuerySet) -> tuple[str, list]:
    """The common table expressions ending in `visits`, one row per stay in a stage:

    opportunity_id, stage, stage_order, entered_at, left_at (NULL while it stays),
    seconds (NULL while it stays), furthest_from_here (the furthest stage along the
    process the opportunity entered from this visit on, this one included).

    An undo takes back the user's last move, which may be several single steps written
    at one instant: the undo row and every row of that instant are left out, so the
    opportunity simply stayed where it was.
    """
    scope, params = opportunities.order_by().values("pk").query.sql_with_params()
    sql = VISITS.format(
        scope=scope,
        stage_change=connection.ops.quote_name(StageChange._meta.db_table),
        opportunity=connection.ops.quote_name(Opportunity._meta.db_table),
        stage_order=stage_order_sql("stage"),
        seconds=seconds_between("left_at", "entered_at"),
    )
    return sql, list(params)
