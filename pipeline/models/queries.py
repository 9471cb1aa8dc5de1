"""Finding opportunities: visibility, the board's filters and columns, and totals in the
company currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connections, models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from crm.models import (
    Contact,
    ExchangeRate,
    User,
    company_currency,
    fiscal_quarter_bounds,
    fiscal_quarter_moments,
)
from pipeline.models.activities import CONVERSATIONS, Activity
from pipeline.models.checklist import CommitteeMember, CriterionTick
from pipeline.models.close_plans import ClosePlan
from pipeline.models.dead_pool import (
    claimer_annotations,
    dead_since_bounds,
    died_in_stage,
    open_claims,
)
from pipeline.models.hygiene import HygieneQuerySet, count_close_date_pushes
from pipeline.models.orders import PurchaseOrder
from pipeline.models.timeouts import DEADLINE_WARNING
from pipeline.process import (
    PROCESS,
    TIMED_STAGES,
    CriterionKind,
    ForecastCategory,
    Stage,
    category_stages,
)

if TYPE_CHECKING:
    from pipeline.models.opportunity import Opportunity


# The categories a quarter's open forecast sums: neither omitted nor closed.
FORECAST_OPEN = (ForecastCategory.COMMIT, ForecastCategory.BEST_CASE, ForecastCategory.PIPELINE)


class OpportunityQuerySet(HygieneQuerySet):
    def open(self) -> OpportunityQuerySet:
        """Still being worked: neither won nor parked."""
        return self.exclude(stage__in=[Stage.CLOSED, Stage.DEAD])

    def dead_pool(self) -> OpportunityQuerySet:
        return self.filter(stage=Stage.DEAD)

    def dead_visible_to(self, user: User) -> OpportunityQuerySet:
        """`visible_to(user).dead_pool()`, said so that PostgreSQL needs no join with the
        owner for the roles that see the whole pool (BDRs, sales ops): counting 100,000
        dead rows is then a scan of the pool's partial index alone, not of the table. A
        test holds the two equal for every role."""
        if user.is_authenticated and user.is_active and (
                user.is_superuser or user.is_sales_ops or user.is_bdr):
            return self.dead_pool()
        return self.visible_to(user).dead_pool()

    def in_pool(self) -> OpportunityQuerySet:
        """The dead pool as its page lists it, most recently dead first, each with the
        stage it died in and its claimer: one query however many rows."""
        return (self.dead_pool().select_related("account", "owner")
                .annotate(died_in=died_in_stage(), **claimer_annotations())
                .order_by("-stage_entered_at", "-pk"))

    def pool_matching(self, *, user: User, now: datetime, stage: str = "", reason: str = "",
                      owner: User | None = None, account: str = "", age: str = "",
                      claimed: str = "") -> OpportunityQuerySet:
        """The dead pool's filters, on rows from `in_pool`."""
        found = self
        if stage:
            found = found.filter(died_in=stage)
        if reason:
            found = found.filter(dead_reason=reason)
        if owner is not None:
            found = found.filter(owner=owner)
        if account:
            found = found.filter(account__name__icontains=account)
        died_after, died_by = dead_since_bounds(age, now)
        if died_after is not None:
            found = found.filter(stage_entered_at__gt=died_after)
        if died_by is not None:
            found = found.filter(stage_entered_at__lte=died_by)
        if claimed == "claimed":
            found = found.filter(Exists(open_claims()))
        elif claimed == "unclaimed":
            found = found.exclude(Exists(open_claims()))
        elif claimed == "mine":
            found = found.filter(Exists(open_claims().filter(claimed_by=user)))
        return found

    def relying_on(self, contact: Contact) -> OpportunityQuerySet:
        """Those naming the contact as champion or as a current decision-committee member."""
        on_committee = CommitteeMember.objects.filter(contact=contact, removed_at__isnull=True)
        return self.filter(Q(champion=contact) | Q(pk__in=on_committee.values("opportunity")))

    def visible_to(self, user: User) -> OpportunityQuerySet:
        """What this user may see, by role (process.md, Roles; issue #2's table)."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or user.is_sales_ops:
            return self
        seen = Q(pk__in=[])
        team = Q(owner__team_id__in=user.team_ids) | Q(owner=user)
        if user.is_rep or user.is_manager:
            seen |= team
        if user.is_bdr:
            seen |= (team & Q(stage=Stage.IDENTIFYING)) | Q(stage=Stage.DEAD)
        return self.filter(seen)

    def with_checklist(self) -> OpportunityQuerySet:
        """Everything the gates read, in a fixed number of queries however many rows."""
        return self.select_related("account", "owner", "champion").prefetch_related(
            models.Prefetch(
                "ticks",
                queryset=CriterionTick.objects.filter(revoked_at__isnull=True).select_related(
                    "ticked_by"
                ),
                to_attr="active_ticks",
            ),
            models.Prefetch(
                "committee_members",
                queryset=CommitteeMember.objects.filter(removed_at__isnull=True).select_related(
                    "contact", "confirmed_by"
                ),
                to_attr="prefetched_committee",
            ),
        )

    def overdue(self, now: datetime | None = None) -> OpportunityQuerySet:
        """Past their stage deadline, by the indexed deadline column."""
        return self.filter(stage_deadline__lt=now or timezone.now(), stage__in=TIMED_STAGES)

    def due_for_warning(self, now: datetime | None = None) -> OpportunityQuerySet:
        """Deadline within the warning period and the owner not warned of it yet."""
        now = now or timezone.now()
        return self.filter(
            stage__in=TIMED_STAGES, stage_deadline__gte=now,
            stage_deadline__lt=now + DEADLINE_WARNING, deadline_warned_at__isnull=True,
        )

    def due_for_parking(self, now: datetime | None = None) -> OpportunityQuerySet:
        """Overdue: the strong reasons to keep one (process.md, Timeouts) extend its
        deadline instead, before the sweep parks (see extensions.py)."""
        return self.overdue(now)

    def matching(self, *, user: User, scope: str = "", owner: User | None = None,
                 type: str = "", category: str = "", closing_quarter: tuple[int, int] | None = None,
                 text: str = "", closed_since: date | None = None) -> OpportunityQuerySet:
        """The board's filters. Closed ones count only from `closed_since` (the quarter)."""
        found = self
        if scope == "mine":
            found = found.filter(owner=user)
        elif scope == "team":
            found = found.filter(Q(owner__team_id__in=user.team_ids) | Q(owner=user))
        if owner is not None:
            found = found.filter(owner=owner)
        if type:
            found = found.filter(type=type)
        if category:
            found = found.filter(stage__in=category_stages(ForecastCategory(category)))
        if closing_quarter:
            first, after = fiscal_quarter_bounds(*closing_quarter)
            found = found.filter(expected_close_date__gte=first, expected_close_date__lt=after)
        if text:
            found = found.filter(Q(name__icontains=text) | Q(account__name__icontains=text))
        if closed_since:
            # A moment, not `__date`: converting every row's timestamp to a date made the
            # board's header query a third slower.
            since = timezone.make_aware(datetime.combine(closed_since, time.min))
            found = found.exclude(stage=Stage.CLOSED, stage_entered_at__lt=since)
        return found

    def won_in_quarter(self, year: int, quarter: int) -> OpportunityQuerySet:
        """Won in the fiscal quarter, by the moment they closed: a closed opportunity is
        final, so it entered its stage when it was won."""
        start, end = fiscal_quarter_moments(year, quarter)
        return self.filter(stage=Stage.CLOSED, stage_entered_at__gte=start,
                           stage_entered_at__lt=end)

    def expected_in_quarter(self, year: int, quarter: int,
                            categories=FORECAST_OPEN) -> OpportunityQuerySet:
        """Open, in one of these forecast categories, expected to close in the quarter."""
        first, after = fiscal_quarter_bounds(year, quarter)
        stages = [stage for category in categories for stage in category_stages(category)]
        return self.filter(stage__in=stages, expected_close_date__gte=first,
                           expected_close_date__lt=after)

    def behind_forecast(self, year: int, quarter: int,
                        category: ForecastCategory | None = None) -> OpportunityQuerySet:
        """Exactly the opportunities behind a quarter's forecast figure: Closed (won in
        it), one open category, or (no category) all of them."""
        if category == ForecastCategory.CLOSED:
            return self.won_in_quarter(year, quarter)
        if category is not None:
            return self.expected_in_quarter(year, quarter, categories=(category,))
        return self.won_in_quarter(year, quarter) | self.expected_in_quarter(year, quarter)

    def column_order(self) -> OpportunityQuerySet:
        """How a column lists its cards: soonest expected close first."""
        return self.order_by("expected_close_date", "pk")

    def first_of_each_stage(self, stages, per_stage: int) -> list[Opportunity]:
        """The first `per_stage` cards of each column, in column order, and their progress.

        One indexed LIMIT query per column (a window over every visible row sorted far more
        data), sent as one UNION ALL where the database takes LIMIT inside it (PostgreSQL;
        SQLite does not); two more queries count the progress.
        """
        columns = [self.filter(stage=stage).column_order().cards()[:per_stage]
                   for stage in stages]
        if len(columns) > 1 and connections[self.db].features.supports_slicing_ordering_in_compound:
            # SQL promises no order for a union's rows: sort them back into column order.
            cards = sorted(columns[0].union(*columns[1:], all=True),
                           key=lambda card: (card.expected_close_date, card.pk))
        else:
            cards = [card for column in columns for card in column]
        return count_progress(cards)

    def after(self, key: tuple[date, int] | None) -> OpportunityQuerySet:
        """The cards after `key` (expected close date, id) in column order: "Load more"
        pages by key, so cards moved out of a column meanwhile shift nothing."""
        if key is None:
            return self
        close_date, pk = key
        # The first condition alone bounds the index scan; the second settles the ties.
        return self.filter(expected_close_date__gte=close_date).filter(
            Q(expected_close_date__gt=close_date) | Q(expected_close_date=close_date, pk__gt=pk)
        )

    def cards(self) -> OpportunityQuerySet:
        """What a card shows and nothing more (its progress comes from count_progress):
        the unused columns of three tables cost as much to fetch as the rest of a column."""
        return self.select_related("account", "owner").only(*CARD_FIELDS)

    def company_totals(self) -> Totals:
        """Sum of amounts in the company currency, and what could not be converted."""
        return Totals.of(self)


# What a board card reads, derived criteria and permissions included (see card()).
CARD_FIELDS = (
    "name", "type", "amount", "currency", "expected_close_date", "stage", "stage_entered_at",
    "stage_deadline", "version", "champion", "champion_confirmed_at",
    "account", "account__name",
    "owner", "owner__username", "owner__first_name", "owner__last_name", "owner__team",
)


def count_progress(cards: list[Opportunity]) -> list[Opportunity]:
    """Give each card what its "3/5 criteria" reads, in two grouped queries however many
    cards: loading every tick and committee member as objects was half the board's time,
    and counting them in subqueries of the column's own query cost twice these two."""
    by_pk = {card.pk: card for card in cards}
    by_stage: dict[str, list[int]] = {}
    for card in cards:
        card.ticked_in_stage = card.committee_size = card.committee_unconfirmed = 0
        by_stage.setdefault(card.stage, []).append(card.pk)
    in_their_stage = Q(pk__in=[])
    for stage, pks in by_stage.items():
        # Ticked criteria only: a tick left from when a criterion was still ticked (stage
        # 1's next call, now derived) must not count twice.
        ticked = [criterion.key for criterion in PROCESS[Stage(stage)].exit_criteria
                  if criterion.kind == CriterionKind.TICKED]
        in_their_stage |= Q(opportunity_id__in=pks, criterion__in=ticked)
    ticks = (
        CriterionTick.objects.filter(in_their_stage, revoked_at__isnull=True)
        .values_list("opportunity_id").annotate(count=models.Count("*")).order_by()
    )
    for pk, count in ticks:
        by_pk[pk].ticked_in_stage = count
    committees = (
        CommitteeMember.objects.filter(opportunity_id__in=by_pk, removed_at__isnull=True)
        .values_list("opportunity_id")
        .annotate(size=models.Count("*"),
                  unconfirmed=models.Count("pk", filter=Q(confirmed_on__isnull=True)))
        .order_by()
    )
    for pk, size, unconfirmed in committees:
        by_pk[pk].committee_size, by_pk[pk].committee_unconfirmed = size, unconfirmed
    with_orders = [card.pk for card in cards if card.stage in (Stage.FINALIZING, Stage.PENDING)]
    latest = {}
    if with_orders:  # the latest order of each: whether the gate holds, or was rejected
        orders = PurchaseOrder.objects.filter(opportunity_id__in=with_orders).only(
            "opportunity_id", "outcome", "failed_checks", "recorded_at").order_by(
            "recorded_at", "pk")
        latest = {order.opportunity_id: order for order in orders}
    for card in cards:
        card._current_order = latest.get(card.pk)
    count_plans(cards)
    count_close_date_pushes(cards)
    read_planned_activities(cards)
    return cards


def read_planned_activities(cards: list[Opportunity]) -> None:
    """Each card's next planned activity, and whether a call or meeting lies ahead (stage
    1's criterion), from one query however many cards. Subqueries in the column's own
    query cost more than the rest of it: PostgreSQL computes them for every row it sorts,
    before the LIMIT (docs/decisions.md)."""
    planned: dict[int, list[tuple]] = {card.pk: [] for card in cards}
    rows = (Activity.objects.filter(opportunity_id__any=planned)
            .planned_ahead(timezone.now()).order_by("opportunity_id", "at", "pk")
            .values_list("opportunity_id", "at", "kind"))
    for pk, at, kind in rows:
        planned[pk].append((at, kind))
    for card in cards:
        ahead = planned[card.pk]
        card.next_activity_at, card.next_activity_kind = ahead[0] if ahead else (None, None)
        card.conversation_ahead = any(kind in CONVERSATIONS for _at, kind in ahead)


def count_plans(cards: list[Opportunity]) -> None:
    """Whether each card's close plan is accepted, and how many of its steps are overdue,
    in one grouped query however many cards."""
    today = timezone.localdate()
    current = Q(steps__removed_at__isnull=True)
    plans = (
        ClosePlan.objects.filter(opportunity_id__any=[card.pk for card in cards])
        .values_list("opportunity_id", "rep_accepted_at", "customer_accepted_at")
        .annotate(step_count=models.Count("steps", filter=current),
                  overdue_count=models.Count("steps", filter=current & Q(
                      steps__due_date__lt=today) & ~Q(steps__status="done")))
        .order_by()
    )
    found = {pk: (bool(rep and customer and steps), overdue)
             for pk, rep, customer, steps, overdue in plans}
    for card in cards:
        card._close_plan_accepted, card._overdue_steps = found.get(card.pk, (False, 0))


class PerGroup(Subquery):
    """A subquery on a grouped query's columns, run once per group. Django groups by a
    subquery annotation itself, and PostgreSQL then runs it once per row."""

    def get_group_by_cols(self):
        return []


@dataclass(frozen=True)
class Totals:
    """A total in the company currency, honest about amounts it could not convert."""

    amount: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")
    count: int = 0
    unconverted_count: int = 0
    unconverted_currencies: tuple[str, ...] = ()
    # Whether the opportunity `by_stage(..., holding=pk)` asked about is among the rows.
    holds: bool = False

    @classmethod
    def of(cls, opportunities: models.QuerySet) -> Totals:
        """One total over every stage."""
        return cls.summed(cls.by_stage(opportunities).values())

    @classmethod
    def by_stage(cls, opportunities: models.QuerySet, *,
                 holding: int | None = None) -> dict[Stage, Totals]:
        """A total per stage from one grouped query, which reads each currency's rate too.

        `holding`: an opportunity's id; the total of the stage it is in (among these rows)
        says so in `holds`. After a move the board asks whether the card still matches
        its filter, and this answers without a query of its own.
        """
        rate = (ExchangeRate.objects.filter(currency=OuterRef("currency"))
                .order_by().values("rate")[:1])
        counted = {"held": models.Count("pk", filter=Q(pk=holding))} if holding else {}
        rows = (
            opportunities.order_by()
            .values("stage", "currency")
            .annotate(amount=models.Sum("amount"), count=models.Count("*"),
                      rate=PerGroup(rate), **counted)
        )
        company = company_currency()
        totals: dict[Stage, Totals] = {}
        for row in rows:
            stage = Stage(row["stage"])
            row_rate = Decimal(1) if row["currency"] == company else row["rate"]
            part = cls.converted(row, row_rate, stage)
            totals[stage] = cls.summed([totals.get(stage, cls()), part])
        return totals

    @classmethod
    def converted(cls, row: dict, rate: Decimal | None, stage: Stage) -> Totals:
        if rate is None:
            return cls(count=row["count"], unconverted_count=row["count"],
                       unconverted_currencies=(row["currency"],), holds=bool(row.get("held")))
        amount = (row["amount"] or Decimal(0)) * rate
        return cls(
            amount=amount.quantize(Decimal("0.01")),
            weighted=(amount * PROCESS[stage].probability / 100).quantize(Decimal("0.01")),
            count=row["count"],
            holds=bool(row.get("held")),
        )

    @classmethod
    def summed(cls, parts) -> Totals:
        parts = list(parts)
        return cls(
            amount=sum((p.amount for p in parts), Decimal("0.00")),
            weighted=sum((p.weighted for p in parts), Decimal("0.00")),
            count=sum(p.count for p in parts),
            unconverted_count=sum(p.unconverted_count for p in parts),
            unconverted_currencies=tuple(sorted({c for p in parts
                                                 for c in p.unconverted_currencies})),
            holds=any(p.holds for p in parts),
        )
