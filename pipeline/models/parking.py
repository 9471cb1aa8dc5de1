"""The timeout sweep's parking of overdue opportunities as Dead, a batch at a time.

`move_to` parks one opportunity in about a dozen queries; at a million open opportunities
with a tenth of them overdue that took longer than the fifteen minutes between two sweeps.
A batch is claimed by one conditional UPDATE … RETURNING and recorded by set-based
inserts in the same transaction, and writes what `move_to(Stage.DEAD)` writes for each:
the same row, history row and notification (tests/pipeline/test_parking.py compares them).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from crm.models import Notification, User
from pipeline.models.activities import Activities
from pipeline.models.checklist import Checklist, CommitteeMember, CriterionTick
from pipeline.models.choices import Via
from pipeline.models.close_plans import Planning
from pipeline.models.history import StageChange, move_message
from pipeline.models.orders import Ordering, PurchaseOrder
from pipeline.models.parked_history import DERIVED_CRITERIA, insert_parked_history
from pipeline.models.queries import count_plans, read_planned_activities
from pipeline.process import CRITERIA, TIMED_STAGES, DeadReason, Stage

logger = logging.getLogger(__name__)

# Opportunities parked per transaction: large enough that the per-batch queries are a
# small share, small enough that memory and row locks stay bounded (docs/benchmarks.md).
PARK_BATCH_SIZE = 2000
# Stands for the opportunity's name in a notification's text written once per language.
NAME_MARKER = "\x00name\x00"


def timeout_reasons() -> dict[Stage, str]:
    """The note of an opportunity parked for overstaying each stage, in the site's
    language (who reads the history does not change it)."""
    with translation.override(settings.LANGUAGE_CODE):
        return {stage: gettext("%s timed out.") % stage.label for stage in TIMED_STAGES}


class Parking:
    """The sweep's side of an opportunity: parking every overdue one, batch by batch."""

    @classmethod
    def park_overdue(cls, now: datetime | None = None, *,
                     batch_size: int = PARK_BATCH_SIZE) -> tuple[int, list[int]]:
        """Park everything due for parking at `now`: (how many parked, ids that failed).

        Safe to run twice at once and again after a crash: a batch claims only rows still
        due, so each is parked once. A batch that fails is parked again one opportunity
        at a time, so one bad row is logged and left for the next sweep instead of
        keeping the rest of its batch (or the company's timeouts) from being parked.
        """
        now = now or timezone.now()
        parked, failed, reached = 0, [], None
        while True:
            try:
                batch, reached = cls.park_batch(now, batch_size, skipping=failed,
                                                reached=reached)
            except Exception:
                logger.exception("Failed parking a batch; parking it one by one")
                before = (parked, len(failed))
                for pk in cls._parking_candidates(now, batch_size, skipping=failed,
                                                  reached=reached).values_list("pk", flat=True):
                    try:
                        parked += len(cls.park_batch(now, 1, only=pk)[0])
                    except Exception:
                        failed.append(pk)
                        logger.exception("Failed parking opportunity %s; the next run tries "
                                         "again", pk)
                if (parked, len(failed)) == before:
                    raise  # no row to blame: the database itself, say
                continue
            if not batch:
                return parked, failed
            parked += len(batch)

    @classmethod
    def park_if_still_overdue(cls, pk: int, now: datetime | None = None) -> bool:
        """Park one opportunity as Dead when it is still due for parking; True if parked."""
        return bool(cls.park_batch(now or timezone.now(), 1, only=pk)[0])

    @classmethod
    def park_batch(cls, now: datetime, limit: int, *, skipping: Collection[int] = (),
                   only: int | None = None,
                   reached: datetime | None = None) -> tuple[list[int], datetime | None]:
        """Claim up to `limit` opportunities due for parking and park them, in one
        transaction: (the ids parked, none when nothing is left; the latest deadline
        among them, where the next batch of the sweep begins).

        The claim is one UPDATE whose condition is "still due": a concurrent sweep or a
        user's move that got there first leaves the row out, and on PostgreSQL rows locked
        by someone else are skipped rather than waited for (the next sweep takes them).
        `reached`: the previous batch's latest deadline. The deadline index still holds
        the rows parked before until vacuum, and scanning them again for every batch made
        a sweep's time grow with the square of its rows.
        """
        reasons = timeout_reasons()
        with transaction.atomic():
            claimed = update_returning(
                cls.objects.due_for_parking(now),
                cls._parking_candidates(now, limit, skipping=skipping, only=only, lock=True,
                                        reached=reached)
                .values_list("pk", "stage_deadline"),
                {
                    "stage": Stage.DEAD,
                    "dead_reason": DeadReason.TIMEOUT,
                    # SET reads the row as it was: the note names the stage it died in.
                    "dead_note": Case(*(When(stage=stage, then=Value(reason))
                                        for stage, reason in reasons.items()),
                                      default=Value("")),
                    # What _enter_stage sets for Dead, which has no timeout.
                    "stage_entered_at": now,
                    "amount_at_stage_entry": F("amount"),
                    "stage_deadline": None,
                    "deadline_warned_at": None,
                    # What _touch sets for the system.
                    "version": F("version") + 1,
                    "changed_at": now,
                    "changed_by": None,
                },
                returning=("id", "dead_note", "owner_id", "name", "champion_id",
                           "champion_confirmed_at"),
            )
            if claimed:
                source_of = {reason: stage for stage, reason in reasons.items()}
                cls._record_parked(claimed, source_of, now)
        return [pk for pk, *_rest in claimed], (
            as_aware(claimed[0][-1]) if claimed else reached)

    @classmethod
    def _parking_candidates(cls, now: datetime, limit: int, *, skipping: Collection[int] = (),
                            only: int | None = None, lock: bool = False,
                            reached: datetime | None = None) -> models.QuerySet:
        """The next `limit` due, oldest deadline first, off the deadline index."""
        due = cls.objects.due_for_parking(now)
        if reached is not None:
            due = due.filter(stage_deadline__gte=reached)
        if skipping:
            due = due.exclude(pk__in=skipping)
        if only is not None:
            due = due.filter(pk=only)
        if lock and connections[due.db].features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        # The deadline alone, no tie-breaker: the partial index then yields the rows in
        # order and the LIMIT stops the scan; a second key would sort every overdue row.
        return due.order_by("stage_deadline")[:limit]

    @classmethod
    def _record_parked(cls, claimed: list[tuple], source_of: dict[str, Stage],
                       now: datetime) -> None:
        """Write each parked opportunity's history row and its owner's notification, as
        move_to does, with one INSERT for each kind."""
        pks = [pk for pk, *_rest in claimed]
        if connections[cls.objects.db].vendor == "postgresql":
            # The snapshot is built in the database (parked_history.py).
            insert_parked_history(
                cls._meta.db_table, pks, source_of, now,
                cls._derived_met(cls._read_for_checklist(
                    [ChecklistAsRead(pk, champion, as_aware(confirmed) if confirmed else None)
                     for pk, _note, _owner, _name, champion, confirmed, _reached in claimed])),
                using=cls.objects.db)
        else:
            snapshots = cls._checklist_snapshots(
                [ChecklistAsRead(pk, champion, as_aware(confirmed) if confirmed else None)
                 for pk, _note, _owner, _name, champion, confirmed, _reached in claimed])
            insert_rows(
                StageChange,
                ("opportunity_id", "from_stage", "to_stage", "changed_by_id", "changed_at",
                 "via", "reason", "dead_reason", "handed_to_id", "checklist", "is_undo"),
                ((pk, source_of[note], Stage.DEAD.value, None, now, Via.TIMEOUT.value, note,
                  DeadReason.TIMEOUT.value, None, snapshots[pk], False)
                 for pk, note, *_rest in claimed),
            )
        cls._notify_owners(claimed, source_of)

    @classmethod
    def _notify_owners(cls, claimed: list[tuple], source_of: dict[str, Stage]) -> None:
        """Each owner's notification in their language, as send_in_their_language writes
        it. The texts differ only by the opportunity's name: each language's text for each
        stage is written once with a marker for the name (gettext for every row cost a
        tenth of a sweep)."""
        languages = dict(User.objects.filter(pk__any={row[2] for row in claimed})
                         .values_list("pk", "language"))
        link_of = links_by_id(cls)
        texts = {}
        messages = []
        for pk, note, owner, name, *_rest in claimed:
            language = languages[owner]
            if (language, note) not in texts:
                with translation.override(language):
                    texts[language, note] = move_message(NAME_MARKER, None, source_of[note],
                                                         Stage.DEAD, note)
            subject, body = texts[language, note]
            messages.append((owner, subject.replace(NAME_MARKER, name),
                             body.replace(NAME_MARKER, name), link_of(pk)))
        Notification.send_many(messages)

    @staticmethod
    def _read_for_checklist(opportunities: list[ChecklistAsRead]) -> list[ChecklistAsRead]:
        """The opportunities as the derived criteria read them: their close plans,
        planned activities and latest purchase orders, from three queries however many
        opportunities."""
        count_plans(opportunities)
        read_planned_activities(opportunities)
        latest = {order.opportunity_id: order for order in PurchaseOrder.objects.filter(
            opportunity_id__any=[opportunity.pk for opportunity in opportunities]).only(
            "opportunity_id", "outcome").order_by("recorded_at", "pk")}
        for opportunity in opportunities:
            opportunity._current_order = latest.get(opportunity.pk)
        return opportunities

    @staticmethod
    def _derived_met(opportunities: list[ChecklistAsRead]) -> dict[str, list[int]]:
        """For each derived criterion, the ids of the opportunities that meet it; the
        committee is counted for them all in one query."""
        counts = {pk: (members, unconfirmed) for pk, members, unconfirmed in (
            CommitteeMember.objects.filter(
                opportunity_id__any=[opportunity.pk for opportunity in opportunities],
                removed_at__isnull=True)
            .values_list("opportunity_id").order_by()
            .annotate(members=Count("pk"),
                      unconfirmed=Count("pk", filter=Q(confirmed_on__isnull=True))))}
        for opportunity in opportunities:
            opportunity.committee_size, opportunity.committee_unconfirmed = counts.get(
                opportunity.pk, (0, 0))
        return {key: [opportunity.pk for opportunity in opportunities
                      if CRITERIA[key].derived_check(opportunity)]
                for key in DERIVED_CRITERIA}

    @classmethod
    def _checklist_snapshots(cls, opportunities: list[ChecklistAsRead]) -> dict[int, dict]:
        """Each opportunity's checklist as move_to records it, in Python (for databases
        other than PostgreSQL): their ticks, committees, close plans, activities and
        latest purchase orders, from five queries however many opportunities."""
        pks = [opportunity.pk for opportunity in opportunities]
        cls._read_for_checklist(opportunities)
        ticks, committees = defaultdict(list), defaultdict(list)
        for pk, *tick in CriterionTick.objects.filter(
                opportunity_id__in=pks, revoked_at__isnull=True).order_by().values_list(
                "opportunity_id", "criterion", "state", "note", "ticked_at",
                "ticked_by__username"):
            ticks[pk].append(TickAsRead(*tick))
        for member in CommitteeMember.objects.filter(opportunity_id__in=pks,
                                                     removed_at__isnull=True):
            committees[member.opportunity_id].append(member)
        for opportunity in opportunities:
            opportunity.active_ticks = ticks[opportunity.pk]
            opportunity.prefetched_committee = committees[opportunity.pk]
        return {opportunity.pk: opportunity.checklist_snapshot() for opportunity in opportunities}


class ChecklistAsRead(Checklist, Planning, Ordering, Activities):
    """An opportunity as its checklist snapshot reads it, from one row and what is read
    for it: the same methods as Opportunity's, without a model instance each (making
    those, and one per tick and its user, cost more than the rest of a sweep)."""

    def __init__(self, pk: int, champion_id: int | None,
                 champion_confirmed_at: datetime | None):
        self.pk = pk
        self.champion_id = champion_id
        self.champion_confirmed_at = champion_confirmed_at


def as_aware(value: datetime | str) -> datetime:
    """A timestamp as a raw cursor returns it: SQLite's is the stored text (UTC) or, for a
    column in RETURNING, a naive datetime (UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def links_by_id(model) -> Callable[[int], str]:
    """`model.url_of` for many ids: reverse() runs once and each id is put in its place
    (reverse() for each row cost an eighth of a sweep)."""
    marker = 918273645
    prefix, suffix = model.url_of(marker).split(str(marker))
    return lambda pk: f"{prefix}{pk}{suffix}"


@dataclass(frozen=True, slots=True)
class TickAsRead:
    """What checklist_snapshot reads of a CriterionTick and the user who ticked it."""

    criterion: str
    state: str
    note: str
    ticked_at: datetime
    username: str

    @property
    def ticked_by(self) -> TickAsRead:
        return self  # the snapshot asks the tick's user for its name, and nothing else

    def get_username(self) -> str:
        return self.username


def insert_rows(model: type[models.Model], columns: tuple[str, ...], rows: Iterable[tuple],
                using: str = "default") -> None:
    """Insert plain rows (values in `columns` order) in one statement.

    PostgreSQL gets a COPY: bulk_create's INSERT there sends each column as one array,
    and psycopg quotes arrays of JSON text character by character in Python, which cost
    more than everything else a sweep does. Elsewhere (SQLite), bulk_create.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(
            model(**dict(zip(columns, row, strict=True))) for row in rows)
        return
    from psycopg.types.json import Jsonb

    meta = model._meta
    json_at = [index for index, name in enumerate(columns)
               if isinstance(meta.get_field(name), models.JSONField)]
    quote = connection.ops.quote_name
    names = ", ".join(quote(meta.get_field(name).column) for name in columns)
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for index in json_at:
                    row[index] = Jsonb(row[index])
            copy.write_row(row)


def update_returning(queryset: models.QuerySet, among: models.QuerySet, values: dict,
                     returning: tuple[str, ...]) -> list[tuple]:
    """`queryset.filter(pk__in=among).update(**values)`, returning the updated rows'
    `returning` columns (PostgreSQL, and SQLite from 3.35) and, last in each row, the
    largest key in `among`: a query of (id, key) pairs.

    Django's update() returns only a count, and the same UPDATE with a RETURNING clause
    hands back what a batch needs to write its history without reading the rows again.
    `among` is run once, as a materialized WITH query: as `id IN (subquery)` PostgreSQL
    may run a LIMIT … FOR UPDATE subquery again for every row it joins, and update far
    more rows than the limit. Only plain columns: the values come back raw.
    """
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    meta = queryset.model._meta
    among_sql, among_params = among.query.get_compiler(queryset.db).as_sql()
    claim, claimed_id, key = quote("claim"), quote("id"), quote("key")
    # Qualified: a bare column the WITH query lacks would name the updated table's.
    query = queryset.filter(
        pk__in=RawSQL(f"SELECT {claim}.{claimed_id} FROM {claim}", ())
    ).query.chain(UpdateQuery)
    query.add_update_values(values)
    query.annotations = {}
    update_sql, update_params = query.get_compiler(queryset.db).as_sql()
    columns = ", ".join(quote(meta.get_field(name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {claim} ({claimed_id}, {key}) AS MATERIALIZED ({among_sql}) {update_sql} "
            f"RETURNING {columns}, (SELECT MAX({claim}.{key}) FROM {claim})",
            (*among_params, *update_params),
        )
        return cursor.fetchall()
