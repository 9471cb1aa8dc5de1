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
from pipeline.process import ORDERED_STAGES, PROCESS, Stage

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


def stage_at(place: int) -> Stage:
    """The stage at a place along the process, as `visits` gives it."""
    return ORDERED_STAGES[place - 1]


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


# An undo row takes back the moves written at the instant just before it (one move over
# several stages writes one row per stage, all at one instant): those rows and the undo
# row itself are left out. Undos are rare, so finding that instant row by row costs little.
# Creation writes no StageChange: each opportunity gets a row of its own (sequence 0) for
# entering the stage it was created in, the first kept move's source or, without moves,
# where it stands. Sorting creation first keeps it first even when a move shares its
# timestamp. Stages travel as their places along the process (small integers, Dead as
# NULL) and one window serves every column: one sort of the history, of narrow rows.
VISITS = """
undone AS (
    SELECT undo.opportunity_id, (
        SELECT MAX(earlier.changed_at) FROM {stage_change} earlier
        WHERE earlier.opportunity_id = undo.opportunity_id
          AND (earlier.changed_at < undo.changed_at
               OR (earlier.changed_at = undo.changed_at AND earlier.id < undo.id))
    ) AS changed_at
    FROM {stage_change} undo WHERE undo.is_undo AND undo.opportunity_id IN ({scope})
),
history AS (
    SELECT opportunity_id, {from_place} AS from_place, {to_place} AS to_place, changed_at,
           id AS sequence, FALSE AS created
    FROM {stage_change} move
    WHERE NOT is_undo AND opportunity_id IN ({scope}) AND NOT EXISTS (
        SELECT 1 FROM undone WHERE undone.opportunity_id = move.opportunity_id
                               AND undone.changed_at = move.changed_at)
    UNION ALL
    SELECT id, NULL, {current_place}, created_at, 0, TRUE
    FROM {opportunity} WHERE id IN ({scope})
),
paired AS (
    SELECT opportunity_id, changed_at AS entered_at,
           CASE WHEN created THEN COALESCE(LEAD(from_place) OVER later, to_place)
                ELSE to_place END AS stage_order,
           LEAD(changed_at) OVER later AS left_at{beyond}
    FROM history
    WINDOW later AS (PARTITION BY opportunity_id ORDER BY NOT created, changed_at, sequence),
           whole AS (PARTITION BY opportunity_id)
),
visits AS (
    SELECT paired.*, {seconds} AS seconds{beyond_at}
    FROM paired
)"""


def beyond_sql() -> tuple[str, str]:
    """The window columns for `beyond_at`, and its expression in `visits`.

    For each place k along the process, the last time the opportunity entered a stage
    after it: each is one aggregate over the opportunity's whole history, which the one
    sort of the history serves (a running maximum from each row to the end would restart
    at every row)."""
    places = [PROCESS[stage].order for stage in ORDERED_STAGES[:-1]]
    columns = "".join(
        f",\n           MAX(CASE WHEN to_place > {place} AND NOT created "
        f"THEN changed_at END) OVER whole AS beyond_{place}" for place in places)
    whens = " ".join(f"WHEN {place} THEN beyond_{place}" for place in places)
    return columns, f",\n           CASE stage_order {whens} END AS beyond_at"


def visits_sql(opportunities: OpportunityQuerySet, *, beyond: bool = False
               ) -> tuple[str, list]:
    """The common table expressions ending in `visits`, one row per stay in a stage:

    opportunity_id, stage_order (the stage's place along the process, 1 to 8, NULL for
    Dead: stage_at() names it), entered_at, left_at (NULL while it stays), seconds (NULL
    while it stays), and with `beyond`, beyond_at: the last time the opportunity entered
    any stage further along the process than this one (NULL if never), so "it went on"
    is `beyond_at >= entered_at`.

    An undo takes back the user's last move, which may be several single steps written
    at one instant: the undo row and every row of that instant are left out, so the
    opportunity simply stayed where it was.
    """
    scope, params = opportunities.order_by().values("pk").query.sql_with_params()
    sql = VISITS.format(
        scope=scope,
        stage_change=connection.ops.quote_name(StageChange._meta.db_table),
        opportunity=connection.ops.quote_name(Opportunity._meta.db_table),
        from_place=stage_order_sql("from_stage"),
        to_place=stage_order_sql("to_stage"),
        current_place=stage_order_sql("stage"),
        **dict(zip(("beyond", "beyond_at"), beyond_sql() if beyond else ("", ""),
                   strict=True)),
        seconds=seconds_between("left_at", "entered_at"),
    )
    return sql, [*params, *params, *params]
