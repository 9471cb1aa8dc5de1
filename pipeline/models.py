"""Opportunities and the gated state machine that moves them through the process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from crm.models import (
    Account,
    Contact,
    ExchangeRate,
    Notification,
    Role,
    User,
    company_currency,
    fiscal_quarter_bounds,
    validate_currency_code,
    validate_single_line,
)
from pipeline.process import (
    CRITERIA,
    KILLABLE_STAGES,
    ORDERED_STAGES,
    PROCESS,
    TIMED_STAGES,
    Criterion,
    CriterionKind,
    DeadReason,
    ForecastCategory,
    Stage,
    category_stages,
    next_stage,
    stages_from,
)


class Via(models.TextChoices):
    """Where a change came from."""

    BOARD = "board", _("board")
    PAGE = "page", _("opportunity page")
    API = "api", _("API")
    TIMEOUT = "timeout", _("timeout")
    ADMIN = "admin", _("admin")
    IMPORT = "import", _("import")
    SEED = "seed", _("demo data")


class OpportunityType(models.TextChoices):
    NEW_BUSINESS = "new_business", _("New business")
    UPSELL = "upsell", _("Upsell")
    CROSS_SELL = "cross_sell", _("Cross-sell")


class Source(models.TextChoices):
    WEBINAR = "webinar", _("Webinar")
    EVENT = "event", _("Event")
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")
    EXISTING_CUSTOMER = "existing_customer", _("Existing customer")
    PARTNER = "partner", _("Partner")


# Reasons, notes and evidence: room for a few paragraphs, not for a pasted document.
TEXT_LENGTH = 2000


# --- Refusals: every one carries a message a person can act on, and changes nothing. ---


class ChangeRefused(Exception):
    """A change to an opportunity was refused; nothing was written."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidChange(ChangeRefused):
    """The request itself is wrong: a move the process does not allow, a missing reason."""


class ChangeForbidden(ChangeRefused):
    """The user's role does not allow this change."""

    status_code = 403


class Conflict(ChangeRefused):
    """Someone changed the opportunity since the user loaded it."""

    status_code = 409

    def __init__(self, message: str, *, opportunity: Opportunity):
        super().__init__(message)
        self.opportunity = opportunity


class ContactInUse(ChangeRefused):
    """An open opportunity still relies on the contact (see archive_contact)."""

    status_code = 409


class GateNotMet(ChangeRefused):
    """The exit criteria of `stage` do not hold, so the opportunity cannot leave it."""

    status_code = 422

    def __init__(self, message: str, *, stage: Stage, missing: list[Criterion]):
        super().__init__(message)
        self.stage = stage
        self.missing = missing


# --- Configuration kept by sales ops ---


class StageTimeout(models.Model):
    """Sales ops' override of a stage's default timeout (process.md: stages 2 to 6)."""

    stage = models.CharField(
        _("stage"),
        max_length=20,
        unique=True,
        choices=[(stage.value, stage.label) for stage in TIMED_STAGES],
    )
    days = models.PositiveSmallIntegerField(_("days"))
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), on_delete=models.PROTECT,
        null=True, blank=True,
    )

    class Meta:
        verbose_name = _("stage timeout")
        verbose_name_plural = _("stage timeouts")
        constraints = [
            models.CheckConstraint(condition=Q(days__gt=0), name="stage_timeout_positive")
        ]

    def __str__(self) -> str:
        return f"{Stage(self.stage).label}: {self.days}"

    @classmethod
    def days_for(cls, stage: Stage) -> int | None:
        """The timeout in force for a stage: the override, else process.md's default."""
        default = PROCESS[stage].default_timeout_days
        if default is None:
            return None
        override = cls.objects.filter(stage=stage).values_list("days", flat=True).first()
        return override or default


# --- Opportunities ---


class OpportunityQuerySet(models.QuerySet):
    def open(self) -> OpportunityQuerySet:
        """Still being worked: neither won nor parked."""
        return self.exclude(stage__in=[Stage.CLOSED, Stage.DEAD])

    def dead_pool(self) -> OpportunityQuerySet:
        return self.filter(stage=Stage.DEAD)

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
            stage_deadline__lt=now + Opportunity.DEADLINE_WARNING, deadline_warned_at__isnull=True,
        )

    def due_for_parking(self, now: datetime | None = None) -> OpportunityQuerySet:
        """Overdue with no strong reason to keep them (process.md, Timeouts): no recent
        activity, and the amount has not doubled since the stage was entered."""
        now = now or timezone.now()
        return self.overdue(now).filter(
            changed_at__lt=now - Opportunity.RECENT_ACTIVITY,
            amount__lt=2 * F("amount_at_stage_entry"),
        )

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
        in_their_stage |= Q(opportunity_id__in=pks, criterion__startswith=f"{stage}.")
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
    return cards


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


class Opportunity(ConcurrentTransitionMixin, models.Model):
    """A deal being worked through the process; its stage changes only through move_to."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.PROTECT,
        related_name="opportunities",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT,
        related_name="opportunities",
    )
    name = models.CharField(_("name"), max_length=200, validators=[validate_single_line])
    type = models.CharField(
        _("type"), max_length=20, choices=OpportunityType.choices,
        default=OpportunityType.NEW_BUSINESS,
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3,
                                validators=[validate_currency_code])
    expected_close_date = models.DateField(_("expected close date"))
    next_step = models.CharField(_("next step"), max_length=300, blank=True,
                                 validators=[validate_single_line])
    next_step_date = models.DateField(_("next step date"), null=True, blank=True)

    stage = FSMField(
        _("stage"), max_length=20, choices=Stage.choices, default=Stage.IDENTIFYING,
        protected=True,
    )
    stage_entered_at = models.DateTimeField(_("in stage since"), default=timezone.now)
    stage_deadline = models.DateTimeField(_("stage deadline"), null=True, blank=True)
    amount_at_stage_entry = models.DecimalField(
        _("amount at stage entry"), max_digits=14, decimal_places=2
    )

    champion = models.ForeignKey(
        Contact, verbose_name=_("champion"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="championed_opportunities",
    )
    champion_confirmed_at = models.DateTimeField(_("champion confirmed"), null=True, blank=True)
    champion_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("champion confirmed by"),
        on_delete=models.PROTECT, null=True, blank=True, related_name="+",
    )

    dead_reason = models.CharField(
        _("dead reason"), max_length=20, choices=DeadReason.choices, blank=True
    )
    dead_note = models.TextField(_("dead note"), max_length=TEXT_LENGTH, blank=True)
    deadline_warned_at = models.DateTimeField(_("owner warned of the deadline"), null=True,
                                              blank=True)

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    version = models.PositiveIntegerField(_("version"), default=1)
    changed_at = models.DateTimeField(_("last changed"), default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("last changed by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        indexes = [
            # The timeout sweep scans only this; a partial index keeps it small.
            models.Index(
                fields=["stage_deadline"], name="opportunity_deadline",
                condition=Q(stage_deadline__isnull=False),
            ),
            # A board column: its first cards come straight off this index.
            models.Index(fields=["stage", "expected_close_date", "id"],
                         name="opportunity_column"),
            models.Index(fields=["owner", "stage"], name="opportunity_owner_stage"),
            # The column headers' totals are read from this index alone (an index-only
            # scan on PostgreSQL), the id included: after a move the same query tells
            # whether the card still matches the board's filter. Key columns rather than
            # INCLUDE, which SQLite lacks.
            models.Index(fields=["stage", "owner", "currency", "amount", "stage_entered_at",
                                 "id"],
                         name="opportunity_stage_totals"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount"),
            models.CheckConstraint(condition=Q(dead_note__length__lte=TEXT_LENGTH),
                                   name="opportunity_dead_note_length"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("pipeline:opportunity_detail", args=[self.pk])

    @classmethod
    def start(cls, *, account: Account, owner: User, by: User | None, name: str, source: str,
              amount: Decimal, currency: str, expected_close_date: date,
              type: str = OpportunityType.NEW_BUSINESS, **details: Any) -> Opportunity:
        """Open a new opportunity in stage 1, owned by `owner`."""
        if not cls.may_be_opened(by=by, owner=owner):
            raise ChangeForbidden(
                gettext("You may open opportunities for yourself, or for your team as its "
                        "manager; %s cannot own one.") % owner)
        now = timezone.now()
        return cls.objects.create(
            account=account, owner=owner, name=name, source=source, type=type,
            amount=amount, amount_at_stage_entry=amount, currency=currency.upper(),
            expected_close_date=expected_close_date, stage_entered_at=now, created_at=now,
            changed_at=now, changed_by=by, **details,
        )

    def reload(self) -> None:
        """Re-read the row and forget what was prefetched with it."""
        self.refresh_from_db()
        for name in ("active_ticks", "prefetched_committee"):
            self.__dict__.pop(name, None)

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        """Django's own reload, safe while other threads work with opportunities.

        django-fsm-2's version switches the stage's protection off on the field itself,
        which every instance in every thread shares, while it reads: a reload finishing
        in one thread switched it back on under a reload in another, which then failed
        with "Direct stage modification is not allowed" after its change was saved. The
        protection only refuses a stage this instance already holds, so the stage is
        taken out of this instance alone for Django to set it again.
        """
        if fields is None:  # what Django reloads when given no fields, named
            self._prefetched_objects_cache = {}
            deferred = self.get_deferred_fields()
            fields = [field.attname for field in self._meta.concrete_fields
                      if field.attname not in deferred]
        held = self.__dict__.pop("stage", None) if "stage" in fields else None
        try:
            models.Model.refresh_from_db(self, using, fields, from_queryset)
        finally:
            if held is not None:
                self.__dict__.setdefault("stage", held)  # the read failed: keep it
        self._update_initial_state()

    def _become(self, saved: Opportunity) -> None:
        """Take on the row as just saved through another instance, and the ticks and
        committee it read under its lock, instead of reading them all back: the board
        answers a move with the card from these. A foreign key that changed forgets its
        cached object."""
        for field in self._meta.concrete_fields:
            if field.attname == "stage":  # django-fsm refuses assignment to the state
                self.__dict__["stage"] = saved.stage
            else:
                setattr(self, field.attname, getattr(saved, field.attname))
        self._update_initial_state()
        for name in ("active_ticks", "prefetched_committee"):
            if name in saved.__dict__:
                self.__dict__[name] = saved.__dict__[name]
            else:
                self.__dict__.pop(name, None)

    # --- derived facts ---

    @property
    def stage_rule(self):
        return PROCESS[Stage(self.stage)]

    @property
    def probability(self) -> int:
        return self.stage_rule.probability

    @property
    def forecast_category(self) -> ForecastCategory:
        return self.stage_rule.category

    @property
    def is_open(self) -> bool:
        return self.stage not in (Stage.CLOSED, Stage.DEAD)

    def active_committee(self) -> list[CommitteeMember]:
        """Current committee members, read once per instance (reload() forgets them)."""
        if "prefetched_committee" not in self.__dict__:
            self.prefetched_committee = list(
                self.committee_members.filter(removed_at__isnull=True).select_related("contact")
            )
        return self.prefetched_committee

    def active_tick_map(self) -> dict[str, CriterionTick]:
        """Ticks that count, by criterion, read once per instance (reload() forgets them)."""
        if "active_ticks" not in self.__dict__:
            self.active_ticks = list(
                self.ticks.filter(revoked_at__isnull=True).select_related("ticked_by")
            )
        return {tick.criterion: tick for tick in self.active_ticks}

    def criterion_met(self, criterion: Criterion, ticks: dict | None = None) -> bool:
        if criterion.kind == CriterionKind.DERIVED:
            return criterion.derived_check(self)
        ticks = self.active_tick_map() if ticks is None else ticks
        return criterion.key in ticks

    def missing_criteria(self, stage: Stage | None = None) -> list[Criterion]:
        """What still blocks leaving `stage` (default: the current one) forward."""
        stage = Stage(stage or self.stage)
        ticks = self.active_tick_map()
        return [c for c in PROCESS[stage].exit_criteria if not self.criterion_met(c, ticks)]

    def gate_is_met(self) -> bool:
        return not self.missing_criteria()

    def committee_counts(self) -> tuple[int, int]:
        """(members, members without a preferred-vendor confirmation) of the committee.

        Board cards bring these counted (`count_progress`); otherwise they are counted
        from the committee itself.
        """
        if "committee_size" in self.__dict__:
            return self.committee_size, self.committee_unconfirmed
        members = self.active_committee()
        return len(members), sum(1 for member in members if member.confirmed_on is None)

    def criteria_progress(self) -> tuple[int, int]:
        """(met, total) for the current stage's exit criteria."""
        criteria = self.stage_rule.exit_criteria
        if "ticked_in_stage" not in self.__dict__:
            return len(criteria) - len(self.missing_criteria()), len(criteria)
        derived_met = sum(1 for criterion in criteria
                          if criterion.kind == CriterionKind.DERIVED
                          and criterion.derived_check(self))
        return self.ticked_in_stage + derived_met, len(criteria)

    def checklist_snapshot(self) -> dict[str, Any]:
        """Every criterion's state plus the data derived criteria read, for the history."""
        ticks = self.active_tick_map()
        criteria = {}
        for key, criterion in CRITERIA.items():
            tick = ticks.get(key)
            criteria[key] = {
                "met": self.criterion_met(criterion, ticks),
                "state": tick.state if tick else None,
                "by": tick.ticked_by.get_username() if tick else None,
                "at": tick.ticked_at.isoformat() if tick else None,
                "note": tick.note if tick else None,
            }
        return {
            "criteria": criteria,
            "champion": self.champion_id,
            "champion_confirmed_at": (
                self.champion_confirmed_at.isoformat() if self.champion_confirmed_at else None
            ),
            "committee": [
                {
                    "contact": member.contact_id,
                    "confirmed_on": member.confirmed_on.isoformat()
                    if member.confirmed_on else None,
                }
                for member in self.active_committee()
            ],
        }

    def days_in_stage(self, now: datetime | None = None) -> int:
        return ((now or timezone.now()) - self.stage_entered_at).days

    def timeout_days(self) -> int | None:
        if self.stage_deadline is None:
            return None
        return (self.stage_deadline - self.stage_entered_at).days

    def timeout_state(self, now: datetime | None = None) -> str:
        """"ok", "warning" from 75 % of the stage timeout, "overdue" from 100 %."""
        if self.stage_deadline is None:
            return "ok"
        now = now or timezone.now()
        allowed = (self.stage_deadline - self.stage_entered_at).total_seconds()
        spent = (now - self.stage_entered_at).total_seconds()
        if allowed <= 0 or spent >= allowed:
            return "overdue"
        return "warning" if spent >= 0.75 * allowed else "ok"

    # --- who may do what: the one place every view and the admin ask ---

    def is_visible_to(self, user: User) -> bool:
        return Opportunity.objects.visible_to(user).filter(pk=self.pk).exists()

    def is_managed_by(self, user: User) -> bool:
        return user.is_manager and self.owner.team_id in user.team_ids

    def can_edit(self, user: User | None) -> bool:
        """May change fields, ticks, champion and committee (not the stage per se)."""
        if user is None or user.is_superuser:
            return True
        if not self.is_open:
            return False
        if self.is_managed_by(user):
            return True
        if self.owner_id != user.pk:
            return False
        if user.is_rep:
            return True
        return user.is_bdr and self.stage == Stage.IDENTIFYING

    def can_move(self, user: User | None, target: Stage) -> bool:
        """May this user ask for this move? Gates are checked separately."""
        if user is None or user.is_superuser:
            return True
        if self.stage == Stage.PENDING:
            if target in (Stage.CLOSED, Stage.FINALIZING):
                return user.is_sales_ops
            return target == Stage.DEAD and self.is_managed_by(user)
        if self.stage == Stage.DEAD:
            return user.is_bdr or self.is_managed_by(user) or (
                self.owner_id == user.pk and user.is_rep
            )
        return self.can_edit(user)

    def reachable_stages(self) -> list[Stage]:
        """Where the process lets this opportunity go from here, ignoring gates and roles."""
        stage = Stage(self.stage)
        if stage == Stage.CLOSED:
            return []
        if stage == Stage.DEAD:
            return [Stage.IDENTIFYING]
        if stage == Stage.PENDING:
            return [Stage.FINALIZING, Stage.CLOSED, Stage.DEAD]
        up_to_pending = ORDERED_STAGES[: ORDERED_STAGES.index(Stage.PENDING) + 1]
        return [*(s for s in up_to_pending if s != stage), Stage.DEAD]

    def needs_reason_for(self, target: Stage) -> bool:
        """Moves back, to Dead, out of Dead and rejections ask for a reason first."""
        source = Stage(self.stage)
        if target == Stage.DEAD or source == Stage.DEAD:
            return True
        if source == Stage.PENDING:
            return target == Stage.FINALIZING
        return (target.order or 0) < (source.order or 0)

    def move_targets_for(self, user: User | None) -> list[Stage]:
        """The stages this user may ask to move to (a gate may still refuse forward moves)."""
        return [stage for stage in self.reachable_stages() if self.can_move(user, stage)]

    def can_change_owner(self, user: User | None) -> bool:
        return user is None or user.is_superuser or self.is_managed_by(user)

    def may_be_handed_to(self, new_owner: User, *, by: User | None) -> bool:
        """May `by` make `new_owner` the owner? The app, the admin's form and its bulk
        reassignment all ask this: a team's manager (or a superuser) hands it to an active
        account executive, or while in stage 1 or dead to a BDR, of a team they lead."""
        if not self.can_change_owner(by) or not new_owner.is_active:
            return False
        may_own = new_owner.is_rep or (
            new_owner.is_bdr and self.stage in (Stage.IDENTIFYING, Stage.DEAD))
        if by is None or by.is_superuser:
            return may_own
        return may_own and new_owner.team_id in by.team_ids

    @staticmethod
    def may_be_opened(*, by: User | None, owner: User) -> bool:
        """May `by` open an opportunity owned by `owner`? Reps and BDRs open their own; a
        manager opens them for the reps and BDRs of a team they lead; sales ops and people
        without a role open none (process.md, Roles)."""
        if not owner.is_active or not (owner.is_rep or owner.is_bdr):
            return False
        if by is not None and not by.may_open_opportunities:
            return False
        if by is None or by.is_superuser or by.pk == owner.pk:
            return True
        return by.is_manager and owner.team_id in by.team_ids

    # --- the state machine (django-fsm); only move_to calls these ---

    @transition(
        field=stage,
        source=list(ORDERED_STAGES[:6]),
        target=RETURN_VALUE(*ORDERED_STAGES[1:7]),
        conditions=[gate_is_met],
    )
    def _advance(self) -> Stage:
        return next_stage(Stage(self.stage))

    @transition(
        field=stage,
        source=list(ORDERED_STAGES[1:6]),
        target=RETURN_VALUE(*ORDERED_STAGES[:5]),
    )
    def _step_back(self, target: Stage) -> Stage:
        return target

    @transition(field=stage, source=[*KILLABLE_STAGES, Stage.PENDING], target=Stage.DEAD)
    def _park(self) -> None:
        pass

    @transition(field=stage, source=Stage.DEAD, target=Stage.IDENTIFYING)
    def _reopen(self) -> None:
        pass

    @transition(field=stage, source=Stage.PENDING, target=Stage.CLOSED)
    def _approve(self) -> None:
        pass

    @transition(field=stage, source=Stage.PENDING, target=Stage.FINALIZING)
    def _reject(self) -> None:
        pass

    # --- the one door for every stage change ---

    def move_to(
        self,
        target: Stage | str,
        *,
        by: User | None,
        via: Via,
        reason: str = "",
        expected_version: int | None = None,
        dead_reason: DeadReason | str = "",
        account_executive: User | None = None,
        is_undo: bool = False,
        now: datetime | None = None,
    ) -> list[StageChange]:
        """Move this opportunity to `target`: lock, check, transition, save and record.

        A forward move over several stages is a sequence of gated single moves, all or
        nothing. Raises a ChangeRefused subclass, and then nothing has changed.
        `by=None` is the system (timeouts, imports). Returns the history rows written.
        """
        try:
            target = Stage(target)
        except ValueError:
            raise InvalidChange(gettext("There is no stage “%s”.") % target) from None
        reason = within_limit((reason or "").strip(), gettext("The reason"))
        now = now or timezone.now()
        with transaction.atomic():
            locked = self._lock(expected_version, by)
            if is_undo:
                locked._check_undo(target, by, now)
            if not locked.can_move(by, target):
                raise ChangeForbidden(
                    gettext("You may not move “%(name)s” to %(stage)s.")
                    % {"name": locked.name, "stage": target.label}
                )
            changes = locked._perform_move(
                target, by=by, via=via, reason=reason, dead_reason=dead_reason,
                account_executive=account_executive, is_undo=is_undo, now=now,
            )
            locked._touch(by, now)
            locked.save()
            locked._notify_about_move(changes, by)
        self._become(locked)
        return changes

    def _lock(self, expected_version: int | None, by: User | None) -> Opportunity:
        # No joins: PostgreSQL re-checks only the locked row after a wait, so joined
        # owner or changed_by rows could be stale (or drop the row when the owner changed).
        locked = Opportunity.objects.select_for_update().get(pk=self.pk)
        if locked.owner_id == self.owner_id and Opportunity.owner.is_cached(self):
            # The owner row is not locked either way: the one read with this instance is
            # as good as reading it again, and saves the permission check a query.
            locked.owner = self.owner
        if expected_version is not None and locked.version != int(expected_version):
            who = locked.changed_by or gettext("the system")
            raise Conflict(
                gettext(
                    "“%(name)s” was changed by %(who)s at %(when)s since you loaded it; it is "
                    "now in %(stage)s. Nothing was changed."
                )
                % {
                    "name": locked.name,
                    "who": who,
                    "when": timezone.localtime(locked.changed_at).strftime("%Y-%m-%d %H:%M"),
                    "stage": Stage(locked.stage).label,
                },
                opportunity=locked,
            )
        return locked

    # A change this recent counts as significant activity: the timeout sweep leaves the
    # opportunity alone (it stays overdue, in red, until a week passes without one).
    RECENT_ACTIVITY = timedelta(days=7)

    @classmethod
    def park_if_still_overdue(cls, pk: int, now: datetime | None = None) -> bool:
        """Park one opportunity as Dead when it is still due for parking; True if parked.

        The conditional UPDATE claims the row, so two sweeps running at once park it once;
        the move itself goes through move_to like every other stage change.
        """
        now = now or timezone.now()
        with transaction.atomic():
            claimed = cls.objects.due_for_parking(now).filter(pk=pk).update(
                stage_deadline=None
            )
            if not claimed:
                return False
            opportunity = cls.objects.get(pk=pk)
            with translation.override(settings.LANGUAGE_CODE):
                reason = gettext("%s timed out.") % Stage(opportunity.stage).label
            opportunity.move_to(Stage.DEAD, by=None, via=Via.TIMEOUT, reason=reason,
                                dead_reason=DeadReason.TIMEOUT, now=now)
        return True

    # Owners are warned this long before their stage deadline (process.md, Timeouts).
    DEADLINE_WARNING = timedelta(days=5)

    @classmethod
    def warn_if_still_due(cls, pk: int, now: datetime | None = None) -> bool:
        """Warn the owner once that the stage deadline is near; True if warned now.

        Claimed with a conditional UPDATE, so two sweeps at once warn once.
        """
        now = now or timezone.now()
        with transaction.atomic():
            claimed = cls.objects.due_for_warning(now).filter(pk=pk).update(
                deadline_warned_at=now
            )
            if not claimed:
                return False
            opportunity = cls.objects.select_related("owner").get(pk=pk)
            deadline = timezone.localtime(opportunity.stage_deadline)
            Notification.send_in_their_language(
                opportunity.owner,
                lambda: (
                    gettext("%s is about to time out") % opportunity.name,
                    gettext("“%(name)s” has been in %(stage)s since %(since)s and is parked as "
                            "dead on %(deadline)s unless it moves on or your manager grants "
                            "more time.")
                    % {"name": opportunity.name, "stage": Stage(opportunity.stage).label,
                       "since": timezone.localtime(opportunity.stage_entered_at)
                       .strftime("%Y-%m-%d"),
                       "deadline": deadline.strftime("%Y-%m-%d %H:%M")},
                ),
                opportunity.get_absolute_url(),
            )
        return True

    UNDO_WINDOW = timedelta(minutes=2)

    def _check_undo(self, target: Stage, by: User | None, now: datetime) -> None:
        """Undo only takes back the user's own forward move of a moment ago."""
        last = self.stage_changes.order_by("-changed_at", "-pk").first()
        refusal = InvalidChange(gettext("There is no recent move of yours to undo."))
        if last is None or by is None or last.changed_by_id != by.pk or last.is_undo:
            raise refusal
        if now - last.changed_at > self.UNDO_WINDOW:
            raise refusal
        first = self.stage_changes.filter(changed_at=last.changed_at).order_by("pk").first()
        if Stage(first.from_stage) != target or (target.order or 0) >= (
            Stage(last.to_stage).order or 0
        ):
            raise refusal

    def _touch(self, by: User | None, now: datetime) -> None:
        self.version += 1
        self.changed_at = now
        self.changed_by = by

    def _perform_move(self, target: Stage, *, by, via, reason, dead_reason,
                      account_executive, is_undo, now) -> list[StageChange]:
        source = Stage(self.stage)
        if target == source:
            raise InvalidChange(gettext("The opportunity is already in %s.") % source.label)
        if source == Stage.CLOSED:
            raise InvalidChange(gettext("A closed opportunity is final."))
        if target == Stage.DEAD:
            return [self._park_as_dead(by, via, reason, dead_reason, now)]
        if source == Stage.DEAD:
            return [self._reopen_from_pool(target, by, via, reason, now)]
        if source == Stage.PENDING:
            return [self._leave_pending(target, by, via, reason, now)]
        if target == Stage.CLOSED:
            raise InvalidChange(
                gettext("Only sales ops' approval of a pending order closes an opportunity.")
            )
        if target.order > source.order:
            return self._advance_to(target, by, via, reason, account_executive, is_undo, now)
        return [self._move_back(target, by, via, reason, is_undo, now)]

    def _advance_to(self, target, by, via, reason, account_executive, is_undo, now):
        changes = []
        handed_to = None
        if self.stage == Stage.IDENTIFYING:
            handed_to = self._hand_over_to(account_executive, by, via, now)
        while self.stage != target:
            missing = self.missing_criteria()
            if missing:
                stage = Stage(self.stage)
                raise GateNotMet(
                    gettext("“%(name)s” cannot leave %(stage)s yet: %(missing)s.")
                    % {
                        "name": self.name,
                        "stage": stage.label,
                        "missing": "; ".join(str(c.label) for c in missing),
                    },
                    stage=stage,
                    missing=missing,
                )
            snapshot = self.checklist_snapshot()
            source = Stage(self.stage)
            self._advance()
            changes.append(self._record(source, by, via, reason, snapshot, now,
                                        handed_to=handed_to, is_undo=is_undo))
            handed_to = None
        return changes

    def _hand_over_to(self, account_executive, by, via, now) -> User | None:
        """Leaving stage 1 names the account executive who takes over from the BDR."""
        if account_executive is None:
            if self.owner.is_rep:
                return self.owner
            raise InvalidChange(
                gettext("Name the account executive who takes over when leaving %s.")
                % Stage.IDENTIFYING.label
            )
        if not account_executive.is_rep or not account_executive.is_active:
            raise InvalidChange(
                gettext("%s is not an account executive.") % account_executive
            )
        if account_executive.team_id != self.owner.team_id and not (
            by is None or by.is_superuser
        ):
            raise InvalidChange(
                gettext("%s is not in the team of this opportunity; a manager reassigns "
                        "across teams.") % account_executive
            )
        if account_executive.pk != self.owner_id:
            self._record_field_change("owner", self.owner, account_executive, by, via, now)
            self.owner = account_executive
        return account_executive

    def _move_back(self, target, by, via, reason, is_undo, now):
        if target.order is None or target.order >= self.stage_rule.order:
            raise InvalidChange(gettext("That is not a move back."))
        if not reason:
            raise InvalidChange(gettext("Say why the opportunity moves back."))
        snapshot = self.checklist_snapshot()
        source = Stage(self.stage)
        self._step_back(target)
        if not is_undo:  # an undo restores the state before the move, ticks included
            self._reopen_criteria_from(target, by, now)
        return self._record(source, by, via, reason, snapshot, now, is_undo=is_undo)

    def _park_as_dead(self, by, via, reason, dead_reason, now):
        if self.stage == Stage.DEAD:
            raise InvalidChange(gettext("The opportunity is already dead."))
        try:
            dead_reason = DeadReason(dead_reason)
        except ValueError:
            raise InvalidChange(gettext("Choose why the opportunity is dead.")) from None
        if not reason:
            raise InvalidChange(gettext("Add a note on why the opportunity is dead."))
        snapshot = self.checklist_snapshot()
        source = Stage(self.stage)
        self._park()
        self.dead_reason = dead_reason
        self.dead_note = reason
        return self._record(source, by, via, reason, snapshot, now, dead_reason=dead_reason)

    def _reopen_from_pool(self, target, by, via, reason, now):
        if target != Stage.IDENTIFYING:
            raise InvalidChange(
                gettext("A dead opportunity reopens in %s.") % Stage.IDENTIFYING.label
            )
        if not reason:
            raise InvalidChange(gettext("Say why the opportunity is reopened."))
        snapshot = self.checklist_snapshot()
        self._reopen()
        # Evidence gathered before it died is stale: it earns every gate again.
        self._reopen_criteria_from(Stage.IDENTIFYING, by, now)
        self.dead_reason = ""
        self.dead_note = ""
        if by is not None and by.is_bdr and by.pk != self.owner_id:
            self._record_field_change("owner", self.owner, by, by, via, now)
            self.owner = by
        return self._record(Stage.DEAD, by, via, reason, snapshot, now)

    def _leave_pending(self, target, by, via, reason, now):
        snapshot = self.checklist_snapshot()
        if target == Stage.CLOSED:
            self._approve()
        elif target == Stage.FINALIZING:
            if not reason:
                raise InvalidChange(gettext("Say which checks failed and why."))
            self._reject()
            # The order sales ops rejected no longer counts as received and recorded.
            self.ticks.filter(
                criterion="finalizing.purchase_order_recorded", revoked_at__isnull=True
            ).update(revoked_at=now, revoked_by=by)
            self.__dict__.pop("active_ticks", None)
        else:
            raise InvalidChange(
                gettext("A pending opportunity is approved, rejected or, by a manager, "
                        "parked as dead.")
            )
        return self._record(Stage.PENDING, by, via, reason, snapshot, now)

    def _reopen_criteria_from(self, target: Stage, by: User | None, now: datetime) -> None:
        """A move back reopens the exit criteria of `target` and every later stage.

        Old ticks stay as rows (and in the history's snapshots) but no longer count.
        """
        keys = [c.key for stage in stages_from(target) for c in PROCESS[stage].exit_criteria]
        self.ticks.filter(criterion__in=keys, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=by
        )
        reopened = set(stages_from(target))
        if Stage.VALIDATING in reopened:
            self.champion_confirmed_at = None
            self.champion_confirmed_by = None
        if Stage.CONFIRMING in reopened:
            self.committee_members.filter(removed_at__isnull=True).update(
                confirmed_on=None, confirmed_by=None
            )
        for name in ("active_ticks", "prefetched_committee"):
            self.__dict__.pop(name, None)

    def _enter_stage(self, now: datetime) -> None:
        self.stage_entered_at = now
        self.amount_at_stage_entry = self.amount
        days = StageTimeout.days_for(Stage(self.stage))
        self.stage_deadline = now + timedelta(days=days) if days else None
        self.deadline_warned_at = None

    def _record(self, source, by, via, reason, snapshot, now, *, dead_reason="",
                handed_to=None, is_undo=False) -> StageChange:
        self._enter_stage(now)
        return StageChange.objects.create(
            opportunity=self, from_stage=source, to_stage=self.stage, changed_by=by,
            changed_at=now, via=via, reason=reason, dead_reason=dead_reason,
            handed_to=handed_to, checklist=snapshot, is_undo=is_undo,
        )

    def _record_field_change(self, field_name, old, new, by, via, now) -> None:
        FieldChange.objects.create(
            opportunity=self, field=field_name, old_value=_as_text(old),
            new_value=_as_text(new), changed_by=by, changed_at=now, via=via,
        )

    def _notify_about_move(self, changes: list[StageChange], by: User | None) -> None:
        if not changes:
            return
        first, last = changes[0], changes[-1]

        def write():
            subject = gettext("%(name)s moved to %(stage)s") % {
                "name": self.name, "stage": Stage(last.to_stage).label,
            }
            body = gettext("%(who)s moved “%(name)s” from %(from)s to %(to)s.") % {
                "who": by or gettext("The system"), "name": self.name,
                "from": Stage(first.from_stage).label, "to": Stage(last.to_stage).label,
            }
            return subject, body

        recipients = set()
        if by is None or by.pk != self.owner_id:
            recipients.add(self.owner)
        if last.to_stage == Stage.PENDING:
            recipients.update(User.objects.filter(groups__name=Role.SALES_OPS, is_active=True))
        for recipient in recipients:
            Notification.send_in_their_language(recipient, write, self.get_absolute_url())

    # --- other changes: each locks, checks, writes, records and bumps the version ---

    TRACKED_FIELDS = ("amount", "currency", "expected_close_date", "owner")
    EDITABLE_FIELDS = (
        "name", "type", "source", "amount", "currency", "expected_close_date",
        "next_step", "next_step_date", "owner",
    )

    def update_details(self, *, by: User | None, via: Via = Via.PAGE,
                       expected_version: int | None = None, **changes: Any) -> None:
        """Change plain fields; amount, currency, close date and owner leave a history row."""
        unknown = set(changes) - set(self.EDITABLE_FIELDS)
        if unknown:
            raise InvalidChange(gettext("These fields cannot be changed here: %s")
                                % ", ".join(sorted(unknown)))
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock(expected_version, by)
            if not locked.can_edit(by):
                raise ChangeForbidden(gettext("You may not change “%s”.") % locked.name)
            new_owner = changes.get("owner")
            if new_owner is not None and new_owner.pk != locked.owner_id:
                if not locked.can_change_owner(by):
                    raise ChangeForbidden(gettext("Only a manager reassigns an opportunity."))
                if not locked.may_be_handed_to(new_owner, by=by):
                    raise ChangeForbidden(
                        gettext("%s cannot take it over: choose an active account executive "
                                "of your team.") % new_owner)
                Notification.send_in_their_language(
                    new_owner,
                    lambda: (
                        gettext("%s is now yours") % locked.name,
                        gettext("%(who)s made you the owner of “%(name)s”.")
                        % {"who": by or gettext("The system"), "name": locked.name},
                    ),
                    locked.get_absolute_url(),
                )
            changed = False
            for field_name, value in changes.items():
                old = getattr(locked, field_name)
                if old == value:
                    continue
                if field_name in self.TRACKED_FIELDS:
                    locked._record_field_change(field_name, old, value, by, via, now)
                setattr(locked, field_name, value)
                changed = True
            if changed:
                locked.currency = locked.currency.upper()
                locked._touch(by, now)
                locked.save()
        self.reload()

    def _edit_checklist(self, by: User | None, expected_version: int | None,
                        stage: Stage | None):
        """Lock for a checklist change: only the current stage and later ones are open.

        `stage=None` is for the champion and committee, which can change in any stage
        before Pending (a new decision maker may turn up late).
        """
        locked = self._lock(expected_version, by)
        if not locked.can_edit(by):
            raise ChangeForbidden(gettext("You may not change “%s”.") % locked.name)
        order = locked.stage_rule.order
        if stage is None:
            if order is None or order >= Stage.PENDING.order:
                raise InvalidChange(
                    gettext("The champion and the committee can no longer change in %s.")
                    % Stage(locked.stage).label
                )
            return locked
        if order is None or stage.order < order:
            raise InvalidChange(
                gettext("The criteria of %s can no longer be changed here.") % stage.label
            )
        return locked

    def tick(self, criterion_key: str, *, by: User, note: str, not_required: bool = False,
             expected_version: int | None = None) -> CriterionTick:
        """Tick a criterion with evidence, or mark it not required (stage 5's assessments)."""
        criterion = CRITERIA.get(criterion_key)
        if criterion is None or criterion.kind != CriterionKind.TICKED:
            raise InvalidChange(gettext("“%s” is not a criterion a person ticks.")
                                % criterion_key)
        note = within_limit((note or "").strip(), gettext("The evidence"))
        if not note:
            raise InvalidChange(gettext("Add the evidence (or why it is not required)."))
        if not_required and not criterion.may_be_not_required:
            raise InvalidChange(gettext("“%s” cannot be marked not required.")
                                % criterion.label)
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, criterion.stage)
            if locked.ticks.filter(criterion=criterion.key, revoked_at__isnull=True).exists():
                raise InvalidChange(gettext("“%s” is already ticked.") % criterion.label)
            tick = CriterionTick.objects.create(
                opportunity=locked, criterion=criterion.key, ticked_by=by, ticked_at=now,
                note=note,
                state=CriterionTick.State.NOT_REQUIRED if not_required
                else CriterionTick.State.MET,
            )
            locked._touch(by, now)
            locked.save()
        self.reload()
        return tick

    def untick(self, criterion_key: str, *, by: User,
               expected_version: int | None = None) -> None:
        """Withdraw a tick; the row stays, marked revoked."""
        criterion = CRITERIA.get(criterion_key)
        if criterion is None:
            raise InvalidChange(gettext("There is no criterion “%s”.") % criterion_key)
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, criterion.stage)
            withdrawn = locked.ticks.filter(
                criterion=criterion.key, revoked_at__isnull=True
            ).update(revoked_at=now, revoked_by=by)
            if not withdrawn:
                raise InvalidChange(gettext("“%s” is not ticked.") % criterion.label)
            locked._touch(by, now)
            locked.save()
        self.reload()

    def _contact_of_account(self, contact: Contact) -> Contact:
        if contact.account_id != self.account_id:
            raise InvalidChange(gettext("%(contact)s is not a contact of %(account)s.")
                                % {"contact": contact, "account": self.account})
        return contact

    def name_champion(self, contact: Contact | None, *, by: User, confirmed: bool = True,
                      expected_version: int | None = None) -> None:
        """Name the champion (a contact of the account) and whether they are convinced."""
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, None)
            if contact is not None:
                locked._contact_of_account(contact)
            locked.champion = contact
            locked.champion_confirmed_at = now if contact and confirmed else None
            locked.champion_confirmed_by = by if contact and confirmed else None
            locked._touch(by, now)
            locked.save()
        self.reload()

    def add_committee_member(self, contact: Contact, *, by: User,
                             expected_version: int | None = None) -> CommitteeMember:
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, None)
            locked._contact_of_account(contact)
            if locked.committee_members.filter(contact=contact,
                                               removed_at__isnull=True).exists():
                raise InvalidChange(gettext("%s is already on the committee.") % contact)
            member = CommitteeMember.objects.create(
                opportunity=locked, contact=contact, added_by=by, added_at=now
            )
            locked._touch(by, now)
            locked.save()
        self.reload()
        return member

    def remove_committee_member(self, contact: Contact, *, by: User,
                                expected_version: int | None = None) -> None:
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, None)
            removed = locked.committee_members.filter(
                contact=contact, removed_at__isnull=True
            ).update(removed_at=now, removed_by=by)
            if not removed:
                raise InvalidChange(gettext("%s is not on the committee.") % contact)
            locked._touch(by, now)
            locked.save()
        self.reload()

    def record_preferred_vendor(self, contact: Contact, *, by: User, on: date | None = None,
                                expected_version: int | None = None) -> None:
        """A committee member verbally confirmed us as their preferred vendor."""
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, None)
            confirmed = locked.committee_members.filter(
                contact=contact, removed_at__isnull=True
            ).update(confirmed_on=on or timezone.localdate(), confirmed_by=by)
            if not confirmed:
                raise InvalidChange(gettext("%s is not on the committee.") % contact)
            locked._touch(by, now)
            locked.save()
        self.reload()


    def grant_extension(self, days: int, *, by: User, reason: str,
                        expected_version: int | None = None) -> DeadlineExtension:
        """A manager gives the opportunity more time in its stage, with a reason."""
        reason = within_limit((reason or "").strip(), gettext("The reason"))
        if not reason:
            raise InvalidChange(gettext("Say why the opportunity gets more time."))
        if not 1 <= int(days) <= DeadlineExtension.MAX_DAYS:
            raise InvalidChange(gettext("An extension is between 1 and %d days.")
                                % DeadlineExtension.MAX_DAYS)
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock(expected_version, by)
            if not (by.is_superuser or locked.is_managed_by(by)):
                raise ChangeForbidden(gettext("Only the team's manager grants extensions."))
            if locked.stage_deadline is None:
                raise InvalidChange(gettext("%s has no timeout to extend.")
                                    % Stage(locked.stage).label)
            previous = locked.stage_deadline
            locked.stage_deadline = previous + timedelta(days=int(days))
            locked.deadline_warned_at = None  # the owner hears again before the new one
            extension = DeadlineExtension.objects.create(
                opportunity=locked, stage=locked.stage, days=int(days), reason=reason,
                previous_deadline=previous, new_deadline=locked.stage_deadline,
                granted_by=by, granted_at=now,
            )
            if by.pk != locked.owner_id:
                Notification.send_in_their_language(
                    locked.owner,
                    lambda: (
                        gettext("%s got more time") % locked.name,
                        gettext("%(who)s extended the deadline of “%(name)s” by %(days)d "
                                "days: %(reason)s")
                        % {"who": by, "name": locked.name, "days": int(days),
                           "reason": reason},
                    ),
                    locked.get_absolute_url(),
                )
            locked._touch(by, now)
            locked.save()
        self.reload()
        return extension


def archive_contact(contact: Contact, *, by: User) -> None:
    """Archive a contact who left the customer or no longer matters. Nothing is deleted:
    closed and parked opportunities and the history keep the name; the account page and
    the champion and committee pickers no longer offer it.

    Refused while an open opportunity names the contact as champion or committee member:
    a deal must not rest on someone who is gone, so the rep replaces them there first.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.archived_at:
            return
        relying = Opportunity.objects.open().relying_on(contact)
        if relying.exists():
            raise ContactInUse(_still_relied_on(contact, relying.visible_to(by)))
        contact.archived_at = timezone.now()
        contact.save(update_fields=["archived_at"])


def _still_relied_on(contact: Contact, visible: OpportunityQuerySet) -> str:
    names = list(visible.order_by("name").values_list("name", flat=True)[:4])
    if not names:  # only other teams' opportunities: their names stay with them
        return gettext("%(contact)s is still the champion or a committee member of another "
                       "team's open opportunity. Ask its owner to name someone else first."
                       ) % {"contact": contact}
    shown = ", ".join(f"“{name}”" for name in names[:3]) + (", …" if len(names) > 3 else "")
    return gettext("%(contact)s is still the champion or a committee member of open "
                   "opportunities: %(names)s. Name someone else there first."
                   ) % {"contact": contact, "names": shown}


def within_limit(text: str, what: str) -> str:
    """The text, or a refusal saying how long it may be (TEXT_LENGTH)."""
    if len(text) > TEXT_LENGTH:
        raise InvalidChange(gettext("%(what)s has %(length)d characters; at most %(limit)d fit.")
                            % {"what": what, "length": len(text), "limit": TEXT_LENGTH})
    return text


def _as_text(value: Any) -> str:
    if isinstance(value, models.Model):
        return f"{value.pk}:{value}"
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


class CommitteeMember(models.Model):
    """A contact on the customer's decision committee, and their verbal confirmation."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="committee_members",
    )
    contact = models.ForeignKey(
        Contact, verbose_name=_("contact"), on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("added by"), on_delete=models.PROTECT,
        null=True, related_name="+",
    )
    confirmed_on = models.DateField(_("confirmed us as preferred vendor on"), null=True,
                                    blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("confirmation recorded by"),
        on_delete=models.PROTECT, null=True, blank=True, related_name="+",
    )
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("removed by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("committee member")
        verbose_name_plural = _("committee members")
        ordering = ["added_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "contact"], condition=Q(removed_at__isnull=True),
                name="committee_member_once",
            )
        ]

    def __str__(self) -> str:
        return str(self.contact)


class CriterionTick(models.Model):
    """A person's tick of one exit criterion, with evidence. Never deleted: a reopened or
    withdrawn tick is marked revoked and stops counting."""

    class State(models.TextChoices):
        MET = "met", _("met")
        NOT_REQUIRED = "not_required", _("not required")

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="ticks",
    )
    criterion = models.CharField(_("criterion"), max_length=60,
                                 choices=[(k, c.label) for k, c in CRITERIA.items()])
    state = models.CharField(_("state"), max_length=20, choices=State.choices,
                             default=State.MET)
    note = models.TextField(_("evidence"), max_length=TEXT_LENGTH)
    ticked_at = models.DateTimeField(_("ticked"), default=timezone.now)
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("ticked by"), on_delete=models.PROTECT,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("revoked by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("criterion tick")
        verbose_name_plural = _("criterion ticks")
        ordering = ["ticked_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "criterion"], condition=Q(revoked_at__isnull=True),
                name="criterion_ticked_once",
            ),
            models.CheckConstraint(condition=Q(note__length__lte=TEXT_LENGTH),
                                   name="criterion_tick_note_length"),
        ]

    def __str__(self) -> str:
        return f"{self.get_criterion_display()} ({self.get_state_display()})"


class StageChange(models.Model):
    """One stage change: who (or the system), when, from, to, via, why, and the checklist
    as it stood. Append-only; forecasting and conversion rates read their history here."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="stage_changes",
    )
    from_stage = models.CharField(_("from"), max_length=20, choices=Stage.choices)
    to_stage = models.CharField(_("to"), max_length=20, choices=Stage.choices)
    changed_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("who"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    via = models.CharField(_("via"), max_length=20, choices=Via.choices)
    reason = models.TextField(_("reason"), max_length=TEXT_LENGTH, blank=True)
    dead_reason = models.CharField(_("dead reason"), max_length=20,
                                   choices=DeadReason.choices, blank=True)
    handed_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("handed over to"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    is_undo = models.BooleanField(_("undo"), default=False)
    checklist = models.JSONField(_("checklist"), default=dict)

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["opportunity", "changed_at"], name="stage_change_opp")]
        constraints = [
            models.CheckConstraint(condition=Q(reason__length__lte=TEXT_LENGTH),
                                   name="stage_change_reason_length"),
        ]

    def __str__(self) -> str:
        return f"{self.get_from_stage_display()} → {self.get_to_stage_display()}"

    @property
    def who(self) -> str:
        return str(self.changed_by) if self.changed_by else gettext("system")


class FieldChange(models.Model):
    """A change of amount, currency, close date or owner: old value, new value, who, when."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="field_changes",
    )
    field = models.CharField(_("field"), max_length=30)
    old_value = models.CharField(_("old value"), max_length=300, blank=True)
    new_value = models.CharField(_("new value"), max_length=300, blank=True)
    changed_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("who"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    via = models.CharField(_("via"), max_length=20, choices=Via.choices)

    class Meta:
        verbose_name = _("field change")
        verbose_name_plural = _("field changes")
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["opportunity", "changed_at"], name="field_change_opp")]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} → {self.new_value}"

    @property
    def field_label(self) -> str:
        """The changed field as users know it, translated."""
        return Opportunity._meta.get_field(self.field).verbose_name

    def _shown(self, value: str) -> str:
        """The stored text as the reader writes amounts and dates ("25,922.00" in English,
        "25.922,00" in German); text that no longer parses is shown as stored."""
        # Owners are stored as "pk:name" so history keeps who it was even after renames.
        if self.field == "owner" and ":" in value:
            return value.split(":", 1)[1]
        try:
            if self.field == "amount" and value:
                return formats.number_format(Decimal(value), 2, force_grouping=True)
            if self.field == "expected_close_date" and value:
                return formats.date_format(date.fromisoformat(value))
        except (ArithmeticError, ValueError):
            pass
        return value

    @property
    def old_shown(self) -> str:
        return self._shown(self.old_value)

    @property
    def new_shown(self) -> str:
        return self._shown(self.new_value)


class DeadlineExtension(models.Model):
    """More time in a stage, granted by a manager with a reason. Append-only."""

    MAX_DAYS = 90

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="extensions",
    )
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices)
    days = models.PositiveSmallIntegerField(_("days"))
    reason = models.TextField(_("reason"), max_length=TEXT_LENGTH)
    previous_deadline = models.DateTimeField(_("previous deadline"))
    new_deadline = models.DateTimeField(_("new deadline"))
    granted_at = models.DateTimeField(_("granted"), default=timezone.now)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("granted by"), on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("deadline extension")
        verbose_name_plural = _("deadline extensions")
        ordering = ["granted_at"]
        constraints = [
            models.CheckConstraint(condition=Q(reason__length__lte=TEXT_LENGTH),
                                   name="deadline_extension_reason_length"),
        ]

    def __str__(self) -> str:
        return f"+{self.days} ({self.get_stage_display()})"
