"""Stage timeouts: sales ops' overrides, managers' extensions, and the sweeps that warn
owners and park what overstays."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.localized import day, moment
from crm.models import Notification, User
from pipeline.models.refusals import TEXT_LENGTH, ChangeForbidden, InvalidChange, within_limit
from pipeline.process import PROCESS, TIMED_STAGES, Stage

# Owners are warned this long before their stage deadline (process.md, Timeouts).
DEADLINE_WARNING = timedelta(days=5)


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


class ExtensionKind(models.TextChoices):
    MANAGER = "manager", _("granted by a manager")
    ACTIVITY = "activity", _("customer activity")
    GROWTH = "growth", _("amount doubled")


class DeadlineExtension(models.Model):
    """More time in a stage, with its reason: granted by a manager, or earned by a strong
    reason (customer activity, an amount that doubled; see extensions.py), which the
    system grants once per stage visit. Append-only."""

    MAX_DAYS = 90

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="extensions",
    )
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=ExtensionKind.choices,
                            default=ExtensionKind.MANAGER)
    days = models.PositiveSmallIntegerField(_("days"))
    reason = models.TextField(_("reason"), max_length=TEXT_LENGTH)
    previous_deadline = models.DateTimeField(_("previous deadline"))
    new_deadline = models.DateTimeField(_("new deadline"))
    granted_at = models.DateTimeField(_("granted"), default=timezone.now)
    # None: the system, for a strong reason.
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("granted by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
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


class Timeouts:
    """The timeout side of an opportunity: how long it has been in its stage, the
    sweeps' claims, and managers' extensions."""

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
            Notification.send_in_their_language(
                opportunity.owner,
                lambda: (
                    gettext("%s is about to time out") % opportunity.name,
                    gettext("“%(name)s” has been in %(stage)s since %(since)s and is parked as "
                            "dead on %(deadline)s unless it moves on or your manager grants "
                            "more time.")
                    % {"name": opportunity.name, "stage": Stage(opportunity.stage).label,
                       "since": day(opportunity.stage_entered_at),
                       "deadline": moment(opportunity.stage_deadline)},
                ),
                opportunity.get_absolute_url(),
            )
        return True

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
