"""The opportunity and the one door for every stage change, `move_to` (how each kind of
move is carried out is in `moves`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from crm.localized import moment
from crm.models import (
    Account,
    Contact,
    ImportedRecord,
    Notification,
    User,
    validate_currency_code,
    validate_single_line,
)
from pipeline.models.activities import ACTIVITY_ANNOTATIONS, Activities
from pipeline.models.checklist import Checklist
from pipeline.models.choices import OpportunityType, Source, Via
from pipeline.models.close_plans import Planning
from pipeline.models.dead_pool import DeadPool
from pipeline.models.extensions import StrongReasons
from pipeline.models.history import StageChange
from pipeline.models.hygiene import Hygiene
from pipeline.models.imported import Imported
from pipeline.models.moves import Moves
from pipeline.models.offers import Offering
from pipeline.models.orders import Ordering
from pipeline.models.parking import Parking
from pipeline.models.permissions import Permissions
from pipeline.models.queries import OpportunityQuerySet
from pipeline.models.refusals import (
    TEXT_LENGTH,
    ChangeForbidden,
    Conflict,
    InvalidChange,
    within_limit,
)
from pipeline.models.timeouts import Timeouts
from pipeline.process import (
    KILLABLE_STAGES,
    ORDERED_STAGES,
    PROCESS,
    DeadReason,
    ForecastCategory,
    Stage,
    next_stage,
)


class Opportunity(Permissions, Checklist, Planning, Offering, Ordering, Timeouts, Hygiene,
                  Parking, DeadPool, Activities, StrongReasons, Moves, Imported,
                  ConcurrentTransitionMixin, ImportedRecord):

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
            # The dead pool's page, most recently dead first; only dead rows are in it.
            models.Index(fields=["-stage_entered_at", "-id"], name="opportunity_dead_pool",
                         condition=Q(stage="dead")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount"),
            models.CheckConstraint(condition=Q(dead_note__length__lte=TEXT_LENGTH),
                                   name="opportunity_dead_note_length"),
            ImportedRecord.source_constraint("opportunity_source"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return self.url_of(self.pk)

    @staticmethod
    def url_of(pk: int) -> str:
        """The page of the opportunity `pk`, for rows read without making instances."""
        return reverse("pipeline:opportunity_detail", args=[pk])

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
        for name in ("active_ticks", "prefetched_committee", "_current_order",
                     "_close_plan_accepted", "_overdue_steps", *self.POOL_CACHES,
                     *ACTIVITY_ANNOTATIONS):
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
            for relation in self._meta.related_objects:  # the offer, say
                if relation.is_cached(self):
                    relation.delete_cached_value(self)
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
        # A move changes no activity: what the locked row read of them still holds.
        for name in ("active_ticks", "prefetched_committee", *ACTIVITY_ANNOTATIONS):
            if name in saved.__dict__:
                self.__dict__[name] = saved.__dict__[name]
            else:
                self.__dict__.pop(name, None)
        # A move may have agreed the offer (an UPDATE, not this object) or reopened it:
        # it and the order are read again. The plan it read under its lock is current,
        # withdrawn acceptances included, so the card needs no query of its own for it.
        for name in ("_current_order", "_close_plan_accepted", "_overdue_steps",
                     *self.POOL_CACHES):
            self.__dict__.pop(name, None)
        if Opportunity.offer.related.is_cached(self):
            Opportunity.offer.related.delete_cached_value(self)
        plan = Opportunity.close_plan.related
        if plan.is_cached(saved):
            plan.set_cached_value(self, plan.get_cached_value(saved))
        elif plan.is_cached(self):
            plan.delete_cached_value(self)

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

    # --- the state machine (django-fsm); only move_to calls these ---

    @transition(
        field=stage,
        source=list(ORDERED_STAGES[:6]),
        target=RETURN_VALUE(*ORDERED_STAGES[1:7]),
        conditions=[Checklist.gate_is_met],
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

    @transition(field=stage, source=Stage.DEAD, target=RETURN_VALUE(*ORDERED_STAGES[:6]))
    def _reopen(self, target: Stage) -> Stage:
        return target

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
                    "when": moment(locked.changed_at),
                    "stage": Stage(locked.stage).label,
                },
                opportunity=locked,
            )
        return locked

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
                locked._extend_if_doubled(now)
                locked._touch(by, now)
                locked.save()
        self.reload()
