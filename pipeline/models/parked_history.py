"""The sweep's history rows on PostgreSQL: one INSERT … SELECT per batch that builds each
row's checklist snapshot in the database, as `Checklist.checklist_snapshot` builds it in
Python for a single move.

Reading every tick of a batch into Python, turning it into JSON there and sending that
JSON back cost more than everything else a sweep does (docs/benchmarks.md). The ticks,
the champion and the committee are copied as they are, which SQL does without rules;
the derived criteria's "met" stays in Python (the rules live in pipeline/process.py
once) and comes in as, for each derived criterion, the ids that meet it.
tests/pipeline/test_parking.py compares the two snapshots field by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import connections

from crm.models import User
from pipeline.models.checklist import CommitteeMember, CriterionTick
from pipeline.models.choices import Via
from pipeline.models.history import StageChange
from pipeline.process import CRITERIA, CriterionKind, DeadReason, Stage

DERIVED_CRITERIA = tuple(key for key, criterion in CRITERIA.items()
                         if criterion.kind == CriterionKind.DERIVED)


def isoformat_sql(column: str) -> str:
    """`datetime.isoformat()` of a UTC timestamp (as Django reads it) in SQL: no fraction
    when the microseconds are zero, the offset as +00:00. NULL stays NULL."""
    return (f"replace(to_char({column} AT TIME ZONE 'UTC', "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), '.000000+', '+')")


def insert_parked_history(opportunity_table: str, pks: list[int],
                          source_of: Mapping[str, Stage], now: datetime,
                          derived_met: Mapping[str, Iterable[int]],
                          using: str = "default") -> None:
    """The history row of each opportunity in `pks`, parked as Dead at `now`: from the
    stage its dead note names (`source_of`), with its checklist snapshot. `derived_met`:
    for each derived criterion, the ids that meet it.

    Every criterion starts unmet and unticked (one constant); each row's derived criteria
    that are met and its ticks (as JSON, read as JSONB once per row; of two equal keys
    JSONB keeps the last, the tick) replace their entries with `||`. Building a JSONB
    object for each of the twenty criteria of each row cost twice the rest of the
    statement. Ticks of criteria the process no longer has are left out, as
    `checklist_snapshot` leaves them out.
    """
    quote = connections[using].ops.quote_name
    change, tick, user, member = (model._meta.db_table for model in (
        StageChange, CriterionTick, User, CommitteeMember))
    met_keys, met_ids = [], []
    for key, ids in derived_met.items():
        for pk in ids:
            met_keys.append(key)
            met_ids.append(pk)
    source = "CASE o.dead_note " + " ".join(["WHEN %s THEN %s"] * len(source_of)) + " END"
    source_params = [value for note, stage in source_of.items() for value in (note, stage)]
    sql = f"""
        WITH met (key, id) AS MATERIALIZED (SELECT * FROM unnest(%s::text[], %s::bigint[])),
        entry (id, key, ticked, value) AS (
            SELECT id, key, false, '{json.dumps(criterion_entry(met=True))}'::json FROM met
            UNION ALL
            SELECT t.opportunity_id, t.criterion, true, json_build_object(
                'met', CASE WHEN t.criterion = ANY(%s)
                            THEN (t.criterion, t.opportunity_id) IN (SELECT * FROM met)
                            ELSE true END,
                'state', t.state, 'by', u.username, 'at', {isoformat_sql("t.ticked_at")},
                'note', t.note)
            FROM {quote(tick)} t JOIN {quote(user)} u ON u.id = t.ticked_by_id
            WHERE t.opportunity_id = ANY(%s) AND t.revoked_at IS NULL
                AND t.criterion = ANY(%s)),
        criteria (id, criteria) AS (
            SELECT id, json_object_agg(key, value ORDER BY ticked)::jsonb FROM entry GROUP BY id)
        INSERT INTO {quote(change)} (opportunity_id, from_stage, to_stage, changed_by_id,
            changed_at, via, reason, dead_reason, handed_to_id, checklist, is_undo)
        SELECT o.id, {source}, %s, NULL, %s, %s, o.dead_note, %s, NULL,
            jsonb_build_object(
                'criteria', %s::jsonb || COALESCE(c.criteria, '{{}}'),
                'champion', o.champion_id,
                'champion_confirmed_at', {isoformat_sql("o.champion_confirmed_at")},
                'committee', COALESCE((
                    SELECT jsonb_agg(jsonb_build_object(
                        'contact', m.contact_id,
                        'confirmed_on', to_char(m.confirmed_on, 'YYYY-MM-DD'))
                        ORDER BY m.added_at, m.id)
                    FROM {quote(member)} m
                    WHERE m.opportunity_id = o.id AND m.removed_at IS NULL), '[]'::jsonb)),
            false
        FROM {quote(opportunity_table)} o LEFT JOIN criteria c ON c.id = o.id
        WHERE o.id = ANY(%s)
    """
    unmet = json.dumps({key: criterion_entry(met=False) for key in CRITERIA})
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [met_keys, met_ids, list(DERIVED_CRITERIA), pks, list(CRITERIA),
                             *source_params,
                             Stage.DEAD.value, now, Via.TIMEOUT.value,
                             DeadReason.TIMEOUT.value, unmet, pks])


def criterion_entry(*, met: bool) -> dict:
    """A criterion's entry in a snapshot when nobody ticked it."""
    return {"met": met, "state": None, "by": None, "at": None, "note": None}
