"""The close plan: the steps both sides agree on up to the signature and beyond, accepted
by the rep and by one named contact of the customer (process.md, stage 4: "the most
underrated gate").

The customer works on the plan without an account, through a share link: it expires, can
be revoked, and only a hash of its token is stored, so a copy of the database opens no
plan. Every change, by either side, is recorded as a ClosePlanEvent.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.localized import day
from crm.models import Contact, User, validate_single_line
from crm.tokens import digest
from pipeline.models.refusals import ChangeForbidden, InvalidChange

LINK_DAYS = 30


class StepStatus(models.TextChoices):
    NOT_STARTED = "not_started", _("not started")
    IN_PROGRESS = "in_progress", _("in progress")
    DONE = "done", _("done")


class PlanEvent(models.TextChoices):
    TARGET_DATE = "target_date", _("set the target signature date")
    STEP_ADDED = "step_added", _("added a step")
    STEP_CHANGED = "step_changed", _("changed a step")
    STEP_REMOVED = "step_removed", _("removed a step")
    STEP_DONE = "step_done", _("marked a step done")
    REP_ACCEPTED = "rep_accepted", _("accepted the plan for our side")
    CUSTOMER_ACCEPTED = "customer_accepted", _("accepted the plan for the customer")
    ACCEPTANCE_WITHDRAWN = "customer_acceptance_withdrawn", _(
        "withdrew the customer's acceptance")
    LINK_CREATED = "link_created", _("made a share link")
    LINK_REVOKED = "link_revoked", _("revoked a share link")


class ClosePlan(models.Model):
    """One per opportunity."""

    opportunity = models.OneToOneField(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="close_plan",
    )
    target_signature_date = models.DateField(_("target signature date"))
    rep_accepted_at = models.DateTimeField(_("accepted by us"), null=True, blank=True)
    rep_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("accepted by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    customer_accepted_at = models.DateTimeField(_("accepted by the customer"), null=True,
                                                blank=True)
    customer_accepted_by = models.ForeignKey(
        Contact, verbose_name=_("accepted for the customer by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("close plan")
        verbose_name_plural = _("close plans")

    def __str__(self) -> str:
        return str(self.opportunity)

    def current_steps(self) -> list[ClosePlanStep]:
        """The steps that count, read once per instance: whether the plan is accepted and
        which steps are overdue both read them."""
        if "_current_steps" not in self.__dict__:
            self._current_steps = [step for step in self.steps.all() if step.removed_at is None]
        return self._current_steps

    @property
    def is_accepted(self) -> bool:
        """Both sides accepted a plan with at least one step: the gate's condition."""
        return bool(self.rep_accepted_at and self.customer_accepted_at
                    and self.current_steps())

    def overdue_steps(self, today: date | None = None) -> list[ClosePlanStep]:
        today = today or timezone.localdate()
        return [step for step in self.current_steps() if step.is_overdue(today)]

    def record(self, kind: str, *, user: User | None = None, contact: Contact | None = None,
               link: ShareLink | None = None, detail: str = "") -> None:
        ClosePlanEvent.objects.create(plan=self, kind=kind, by_user=user, by_contact=contact,
                                      via_link=link, detail=detail[:500])

    # --- the customer's side, through a link ---

    def tick_by_customer(self, step_id: int, *, link: ShareLink) -> ClosePlanStep:
        """The contact behind the link marks one of their own steps done."""
        with transaction.atomic():
            step = self.steps.select_for_update().filter(
                pk=step_id, removed_at__isnull=True, owner_contact=link.contact).first()
            if step is None:
                raise InvalidChange(gettext("That step is not one of yours."))
            if step.status != StepStatus.DONE:
                step.status, step.done_on = StepStatus.DONE, timezone.localdate()
                step.save(update_fields=["status", "done_on"])
                self.record(PlanEvent.STEP_DONE, contact=link.contact, link=link, detail=step.title)
        return step

    def accept_by_customer(self, *, link: ShareLink) -> None:
        """The contact behind the link accepts the plan under their name."""
        with transaction.atomic():
            plan = ClosePlan.objects.select_for_update().get(pk=self.pk)
            if not plan.current_steps():
                raise InvalidChange(gettext("The plan has no steps yet."))
            plan.customer_accepted_at = timezone.now()
            plan.customer_accepted_by = link.contact
            plan.save(update_fields=["customer_accepted_at", "customer_accepted_by"])
            plan.record(PlanEvent.CUSTOMER_ACCEPTED, contact=link.contact, link=link)
        self.refresh_from_db()


class ClosePlanStep(models.Model):
    """A step of the plan, owned on our side (a user) or the customer's (a contact)."""

    plan = models.ForeignKey(ClosePlan, verbose_name=_("close plan"), on_delete=models.PROTECT,
                             related_name="steps")
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    title = models.CharField(_("step"), max_length=200, validators=[validate_single_line])
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner on our side"),
        on_delete=models.PROTECT, null=True, blank=True, related_name="+",
    )
    owner_contact = models.ForeignKey(
        Contact, verbose_name=_("owner on the customer's side"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    due_date = models.DateField(_("due"))
    status = models.CharField(_("status"), max_length=20, choices=StepStatus.choices,
                              default=StepStatus.NOT_STARTED)
    done_on = models.DateField(_("done on"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("close plan step")
        verbose_name_plural = _("close plan steps")
        ordering = ["position", "due_date", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_user__isnull=True, owner_contact__isnull=False)
                | Q(owner_user__isnull=False, owner_contact__isnull=True),
                name="close_plan_step_one_owner"),
        ]
        indexes = [models.Index(fields=["due_date"], name="close_plan_step_due",
                                condition=Q(removed_at__isnull=True) & ~Q(status="done"))]

    def __str__(self) -> str:
        return self.title

    @property
    def owner(self):
        return self.owner_user or self.owner_contact

    @property
    def is_customers(self) -> bool:
        return self.owner_contact_id is not None

    def is_overdue(self, today: date) -> bool:
        return self.status != StepStatus.DONE and self.due_date < today


class ShareLinkQuerySet(models.QuerySet):
    def usable(self, now=None) -> ShareLinkQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ShareLink(models.Model):
    """A link for one named contact of the account. Only the token's hash is kept: the
    token itself is shown once, when the link is made."""

    plan = models.ForeignKey(ClosePlan, verbose_name=_("close plan"), on_delete=models.PROTECT,
                             related_name="links")
    contact = models.ForeignKey(Contact, verbose_name=_("contact"), on_delete=models.PROTECT,
                                related_name="+")
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("revoked by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.contact} ({self.plan})"

    @classmethod
    def opened(cls, token: str) -> ShareLink | None:
        """The usable link behind a token, or None (unknown, tampered, expired, revoked);
        the link is read with its plan, contact and opportunity."""
        if not token or len(token) > 100:
            return None
        link = (cls.objects.usable().select_related("plan__opportunity__account", "contact")
                .filter(token_hash=digest(token)).first())
        if link is not None:
            cls.objects.filter(pk=link.pk).update(last_used_at=timezone.now())
        return link

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class ClosePlanEvent(models.Model):
    """What happened to a plan, by whom (a user, or a contact through which link)."""

    plan = models.ForeignKey(ClosePlan, verbose_name=_("close plan"), on_delete=models.PROTECT,
                             related_name="events")
    at = models.DateTimeField(_("when"), default=timezone.now)
    kind = models.CharField(_("what"), max_length=40, choices=PlanEvent.choices)
    by_user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"),
                                on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")
    by_contact = models.ForeignKey(Contact, verbose_name=_("contact"),
                                   on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    via_link = models.ForeignKey(ShareLink, verbose_name=_("share link"),
                                 on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+")
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("close plan event")
        verbose_name_plural = _("close plan events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.at})"

    @property
    def shown_detail(self) -> str:
        """The detail as the reader writes it: a target date, stored as ISO text, shown
        the reader's way."""
        if self.kind == PlanEvent.TARGET_DATE:
            try:
                return day(date.fromisoformat(self.detail))
            except ValueError:
                pass
        return self.detail


class Planning:
    """The close-plan side of an opportunity, mixed into Opportunity: the rep's changes.
    Each locks the opportunity, checks, writes, records and bumps the version."""

    def current_close_plan(self) -> ClosePlan | None:
        try:
            return self.close_plan
        except ClosePlan.DoesNotExist:
            return None

    def has_accepted_close_plan(self) -> bool:
        if "_close_plan_accepted" in self.__dict__:  # counted for a board's cards
            return self._close_plan_accepted
        plan = self.current_close_plan()
        return plan is not None and plan.is_accepted

    def overdue_step_count(self) -> int:
        if "_overdue_steps" in self.__dict__:  # counted for a board's cards
            return self._overdue_steps
        plan = self.current_close_plan()
        return len(plan.overdue_steps()) if plan else 0

    def _lock_for_plan(self, by: User, expected_version: int | None):
        locked = self._lock(expected_version, by)
        if not locked.can_edit(by):
            raise ChangeForbidden(gettext("You may not change “%s”.") % locked.name)
        return locked

    def _changed(self, locked, by: User) -> None:
        locked._touch(by, timezone.now())
        locked.save()
        self.reload()

    def save_close_plan(self, *, by: User, target_signature_date: date,
                        expected_version: int | None = None) -> ClosePlan:
        with transaction.atomic():
            locked = self._lock_for_plan(by, expected_version)
            plan = locked.current_close_plan() or ClosePlan(opportunity=locked)
            plan.target_signature_date = target_signature_date
            plan.save()
            plan.record(PlanEvent.TARGET_DATE, user=by, detail=target_signature_date.isoformat())
            self._changed(locked, by)
        return plan

    def add_plan_step(self, *, by: User, title: str, due_date: date, owner_user=None,
                      owner_contact=None, expected_version: int | None = None,
                      material: bool = True) -> ClosePlanStep:
        """A new step; after both sides accepted, a material one withdraws the customer's
        acceptance (the plan they accepted is no longer the plan)."""
        with transaction.atomic():
            locked = self._lock_for_plan(by, expected_version)
            plan = self._plan_of(locked)
            owner_user, owner_contact = self._checked_owner(locked, owner_user, owner_contact)
            step = plan.steps.create(
                title=title.strip(), due_date=due_date, owner_user=owner_user,
                owner_contact=owner_contact, position=len(plan.current_steps()) + 1)
            plan.record(PlanEvent.STEP_ADDED, user=by, detail=step.title)
            self._after_plan_change(plan, by, material)
            self._changed(locked, by)
        return step

    def change_plan_step(self, step_id: int, *, by: User, material: bool | None,
                         expected_version: int | None = None, **changes) -> ClosePlanStep:
        """Change a step's title, owner, due date or status. Once both sides accepted, the
        rep says whether a change to the plan is material: it then withdraws the
        customer's acceptance; a typo fix does not. Progress (the status) is no change to
        the plan."""
        with transaction.atomic():
            locked = self._lock_for_plan(by, expected_version)
            plan = self._plan_of(locked)
            step = plan.steps.filter(pk=step_id, removed_at__isnull=True).first()
            if step is None:
                raise InvalidChange(gettext("That step is not on the plan."))
            if "owner_user" in changes or "owner_contact" in changes:
                changes["owner_user"], changes["owner_contact"] = self._checked_owner(
                    locked, changes.get("owner_user"), changes.get("owner_contact"))
            if "title" in changes:
                changes["title"] = changes["title"].strip()
            changed = {name: value for name, value in changes.items()
                       if getattr(step, name) != value}
            if not changed:
                return step
            plan_changed = bool(set(changed) - {"status"})
            if plan.is_accepted and plan_changed and material is None:
                raise InvalidChange(gettext("Both sides accepted the plan: say whether this "
                                            "change is material."))
            if "status" in changed:
                changed["done_on"] = timezone.localdate() \
                    if changed["status"] == StepStatus.DONE else None
            for name, value in changed.items():
                setattr(step, name, value)
            step.save()
            plan.record(PlanEvent.STEP_CHANGED, user=by, detail=step.title)
            self._after_plan_change(plan, by, bool(material) and plan_changed)
            self._changed(locked, by)
        return step

    def remove_plan_step(self, step_id: int, *, by: User,
                         expected_version: int | None = None) -> None:
        with transaction.atomic():
            locked = self._lock_for_plan(by, expected_version)
            plan = self._plan_of(locked)
            removed = plan.steps.filter(pk=step_id, removed_at__isnull=True).update(
                removed_at=timezone.now())
            if not removed:
                raise InvalidChange(gettext("That step is not on the plan."))
            plan.record(PlanEvent.STEP_REMOVED, user=by)
            self._after_plan_change(plan, by, material=True)
            self._changed(locked, by)

    def accept_close_plan(self, *, by: User, expected_version: int | None = None) -> None:
        """Our side accepts the plan as it stands."""
        with transaction.atomic():
            locked = self._lock_for_plan(by, expected_version)
            plan = self._plan_of(locked)
            if not plan.current_steps():
                raise InvalidChange(gettext("The plan has no steps yet."))
            plan.rep_accepted_at, plan.rep_accepted_by = timezone.now(), by
            plan.save(update_fields=["rep_accepted_at", "rep_accepted_by"])
            plan.record(PlanEvent.REP_ACCEPTED, user=by)
            self._changed(locked, by)

    def share_close_plan(self, contact: Contact, *, by: User, days: int = LINK_DAYS
                         ) -> tuple[ShareLink, str]:
        """A link for one contact of the account; returns it and its token, which is
        shown once and never stored."""
        if not 1 <= days <= 90:
            raise InvalidChange(gettext("A link lasts between 1 and 90 days."))
        with transaction.atomic():
            locked = self._lock_for_plan(by, None)
            plan = self._plan_of(locked)
            if contact.account_id != locked.account_id or contact.archived_at:
                raise InvalidChange(gettext("%s is not a current contact of the account.")
                                    % contact)
            token = secrets.token_urlsafe(32)
            link = ShareLink.objects.create(
                plan=plan, contact=contact, token_hash=digest(token), created_by=by,
                expires_at=timezone.now() + timedelta(days=days))
            plan.record(PlanEvent.LINK_CREATED, user=by, link=link, detail=str(contact))
        return link, token

    def revoke_plan_link(self, link_id: int, *, by: User) -> None:
        with transaction.atomic():
            locked = self._lock_for_plan(by, None)
            plan = self._plan_of(locked)
            link = plan.links.filter(pk=link_id, revoked_at__isnull=True).first()
            if link is None:
                raise InvalidChange(gettext("That link is revoked already."))
            link.revoked_at, link.revoked_by = timezone.now(), by
            link.save(update_fields=["revoked_at", "revoked_by"])
            plan.record(PlanEvent.LINK_REVOKED, user=by, link=link, detail=str(link.contact))

    def _withdraw_plan_acceptance(self, by: User | None) -> None:
        """A move back to Confirming or earlier reopens its gate: the plan stays, both
        acceptances go (recorded), and both sides accept it again."""
        plan = self.current_close_plan()
        if plan is None or not (plan.rep_accepted_at or plan.customer_accepted_at):
            return
        plan.rep_accepted_at = plan.rep_accepted_by = None
        plan.customer_accepted_at = plan.customer_accepted_by = None
        plan.save(update_fields=["rep_accepted_at", "rep_accepted_by", "customer_accepted_at",
                                 "customer_accepted_by"])
        plan.record(PlanEvent.ACCEPTANCE_WITHDRAWN, user=by,
                    detail=gettext("Moved back before the plan's gate"))

    @staticmethod
    def _plan_of(locked) -> ClosePlan:
        plan = locked.current_close_plan()
        if plan is None:
            raise InvalidChange(gettext("Give the close plan its target signature date "
                                        "first."))
        return plan

    @staticmethod
    def _checked_owner(locked, owner_user, owner_contact):
        if (owner_user is None) == (owner_contact is None):
            raise InvalidChange(gettext("A step has one owner: someone of ours or a contact "
                                        "of the customer."))
        if owner_contact is not None and owner_contact.account_id != locked.account_id:
            raise InvalidChange(gettext("%s is not a contact of the account.") % owner_contact)
        return owner_user, owner_contact

    @staticmethod
    def _after_plan_change(plan: ClosePlan, by: User, material: bool) -> None:
        plan.__dict__.pop("_current_steps", None)  # a step was added, changed or removed
        if material and plan.customer_accepted_at:
            plan.customer_accepted_at = None
            plan.customer_accepted_by = None
            plan.save(update_fields=["customer_accepted_at", "customer_accepted_by"])
            plan.record(PlanEvent.ACCEPTANCE_WITHDRAWN, user=by,
                        detail=gettext("A material change"))
