"""Strong reasons to keep an opportunity past its deadline (process.md, "Timeouts and the
dead pool"): work with the customer, and an amount that doubled. Each earns one extension
per stage visit, granted by the system, logged and told to the manager. Field edits do
not count: a rep could otherwise keep a stalled deal alive by editing it.

When they are judged (docs/decisions.md): the amount when it changes, and both in the
timeout sweep, just before it parks what is overdue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.models import Notification, Role, User
from pipeline.models.activities import Activity
from pipeline.models.timeouts import DeadlineExtension, ExtensionKind, StageTimeout
from pipeline.process import TIMED_STAGES, Stage


class ActivityRule(models.Model):
    """How much customer activity keeps an overdue opportunity, kept by sales ops: by
    default two done calls or meetings in the last 14 days extend its deadline by 14
    days, once per stage visit. One row; without it, the defaults hold."""

    conversations = models.PositiveSmallIntegerField(
        _("done calls or meetings"), default=2,
        help_text=_("How many done calls or meetings with the customer count as significant "
                    "activity."))
    within_days = models.PositiveSmallIntegerField(
        _("within days"), default=14,
        help_text=_("How many days back, from the deadline's sweep, they are counted."))
    extension_days = models.PositiveSmallIntegerField(
        _("extension in days"), default=14,
        help_text=_("How many days significant activity adds to the deadline, once per "
                    "stage visit."))
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("activity rule")
        verbose_name_plural = _("activity rule")
        constraints = [
            models.CheckConstraint(
                condition=Q(conversations__gte=1, within_days__gte=1, within_days__lte=365,
                            extension_days__gte=1,
                            extension_days__lte=DeadlineExtension.MAX_DAYS),
                name="activity_rule_sensible"),
        ]

    def __str__(self) -> str:
        return gettext("%(count)d calls or meetings in %(days)d days") % {
            "count": self.conversations, "days": self.within_days}

    @classmethod
    def current(cls) -> ActivityRule:
        """The rule in force: sales ops' row, else the defaults."""
        return cls.objects.order_by("pk").first() or cls()


class StrongReasons:
    """The strong-reason side of an opportunity, mixed into Opportunity. The methods with
    a leading underscore work on a row already locked, inside the caller's transaction."""

    def has_doubled(self) -> bool:
        """The amount is at least twice what it was when the stage was entered. An entry
        amount of zero has no double: a first figure is not growth."""
        entry = self.amount_at_stage_entry
        return entry > 0 and self.amount >= 2 * entry

    def extended_this_visit(self, kind: ExtensionKind) -> bool:
        """Whether the system already granted this kind of extension since the opportunity
        last entered its stage."""
        return self.extensions.filter(kind=kind, stage=self.stage,
                                      granted_at__gte=self.stage_entered_at).exists()

    def _extend_if_doubled(self, now: datetime) -> DeadlineExtension | None:
        """An amount that doubled in the stage earns one stage timeout more."""
        if self.stage_deadline is None or not self.has_doubled():
            return None
        if self.extended_this_visit(ExtensionKind.GROWTH):
            return None
        entry, amount, currency = self.amount_at_stage_entry, self.amount, self.currency

        def reason() -> str:
            return gettext("The amount grew from %(entry)s to %(amount)s %(currency)s since "
                           "the stage was entered.") % {
                "entry": number_format(entry, 2, force_grouping=True),
                "amount": number_format(amount, 2, force_grouping=True),
                "currency": currency}

        days = StageTimeout.days_for(Stage(self.stage))
        return self._extend_for_strong_reason(ExtensionKind.GROWTH, days, reason, now)

    def _extend_if_active(self, now: datetime, rule: ActivityRule) -> DeadlineExtension | None:
        """Enough done calls and meetings in the rule's window earn its extension."""
        if self.stage_deadline is None or self.extended_this_visit(ExtensionKind.ACTIVITY):
            return None
        since = now - timedelta(days=rule.within_days)
        done = Activity.objects.filter(opportunity=self).conversations_done_within(
            since, now).count()
        if done < rule.conversations:
            return None

        def reason() -> str:
            return ngettext(
                "%(count)d call or meeting with the customer in the last %(days)d days.",
                "%(count)d calls or meetings with the customer in the last %(days)d days.",
                done) % {"count": done, "days": rule.within_days}

        return self._extend_for_strong_reason(ExtensionKind.ACTIVITY, rule.extension_days,
                                              reason, now)

    def _extend_for_strong_reason(self, kind: ExtensionKind, days: int,
                                  reason: Callable[[], str], now: datetime
                                  ) -> DeadlineExtension:
        previous = self.stage_deadline
        self.stage_deadline = previous + timedelta(days=days)
        self.deadline_warned_at = None  # the owner hears again before the new one
        with translation.override(settings.LANGUAGE_CODE):
            logged_reason = reason()
        extension = DeadlineExtension.objects.create(
            opportunity=self, stage=self.stage, kind=kind, days=days, reason=logged_reason,
            previous_deadline=previous, new_deadline=self.stage_deadline, granted_by=None,
            granted_at=now,
        )
        deadline = timezone.localtime(self.stage_deadline).strftime("%Y-%m-%d %H:%M")
        for manager in self.managers():
            Notification.send_in_their_language(
                manager,
                lambda: (
                    gettext("%s got more time") % self.name,
                    gettext("The deadline of “%(name)s” in %(stage)s moved by %(days)d days "
                            "to %(deadline)s: %(reason)s")
                    % {"name": self.name, "stage": Stage(self.stage).label, "days": days,
                       "deadline": deadline, "reason": reason()},
                ),
                self.get_absolute_url(),
            )
        return extension

    def managers(self) -> models.QuerySet:
        """The active managers of the owner's team (those for whom is_managed_by holds)."""
        team = self.owner.team_id
        if team is None:
            return User.objects.none()
        return User.objects.filter(
            Q(team_id=team) | Q(led_teams=team), is_active=True, groups__name=Role.MANAGER,
        ).distinct().order_by("pk")

    @classmethod
    def may_have_strong_reasons(cls, now: datetime, rule: ActivityRule) -> models.QuerySet:
        """The overdue opportunities that may have earned an extension: recent done calls
        and meetings, or a doubled amount. Starts from those few rows rather than judging
        every overdue one; extend_if_earned then judges each under its lock."""
        active = (
            Activity.objects.conversations_done_within(now - timedelta(days=rule.within_days),
                                                       now)
            .order_by().values("opportunity")
            .annotate(done=models.Count("*")).filter(done__gte=rule.conversations)
            .values("opportunity")
        )
        doubled = Q(amount_at_stage_entry__gt=0, amount__gte=2 * F("amount_at_stage_entry"))
        return cls.objects.overdue(now).filter(Q(pk__in=active) | doubled)

    @classmethod
    def extend_if_earned(cls, pk: int, now: datetime, rule: ActivityRule) -> bool:
        """Judge one overdue opportunity's strong reasons under its lock; True if extended.
        Two sweeps at once extend it once: the second finds it extended (or no longer
        overdue)."""
        with transaction.atomic():
            locked = cls.objects.select_for_update().get(pk=pk)
            if locked.stage not in TIMED_STAGES or locked.stage_deadline is None \
                    or locked.stage_deadline >= now:
                return False  # moved, parked or extended meanwhile
            granted = [extension for extension in (locked._extend_if_active(now, rule),
                                                   locked._extend_if_doubled(now))
                       if extension is not None]
            if not granted:
                return False
            locked._touch(None, now)
            locked.save()
        return True
