"""The exit criteria as recorded: ticks with evidence, the champion and the decision
committee, and the opportunity's methods that read and change them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import (
    Contact,
    User,
)
from pipeline.models.choices import Via
from pipeline.models.refusals import TEXT_LENGTH, ChangeForbidden, InvalidChange, within_limit
from pipeline.process import (
    CRITERIA,
    PROCESS,
    Criterion,
    CriterionKind,
    Stage,
    stages_from,
)


class CommitteeMember(models.Model):
    """A contact on the customer's decision committee, and their verbal confirmation."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
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
    # When the confirmation was recorded (confirmed_on is the day the member gave it): the
    # opportunity's history places it by this.
    confirmed_at = models.DateTimeField(_("confirmation recorded"), null=True, blank=True)
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
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
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


class Checklist:
    """The checklist side of an opportunity: what its gates read, and the changes
    that tick, withdraw, name the champion and keep the committee."""

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
                confirmed_on=None, confirmed_by=None, confirmed_at=None
            )
            self._withdraw_plan_acceptance(by)  # both sides accept the plan again
        for name in ("active_ticks", "prefetched_committee", "_close_plan_accepted"):
            self.__dict__.pop(name, None)

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
                      expected_version: int | None = None, via: Via = Via.PAGE) -> None:
        """Name the champion (a contact of the account) and whether they are convinced."""
        now = timezone.now()
        with transaction.atomic():
            locked = self._edit_checklist(by, expected_version, None)
            if contact is not None:
                locked._contact_of_account(contact)
            if (contact.pk if contact else None) != locked.champion_id:
                locked._record_field_change("champion", locked.champion, contact, by,
                                            via, now)
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
            ).update(confirmed_on=on or timezone.localdate(), confirmed_by=by, confirmed_at=now)
            if not confirmed:
                raise InvalidChange(gettext("%s is not on the committee.") % contact)
            locked._touch(by, now)
            locked.save()
        self.reload()
