"""Quotas per rep and fiscal quarter, from which every target is summed; the team targets
set before quotas existed, kept as history."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Team, User
from pipeline.models import ChangeForbidden, InvalidChange

# SQLite sums decimals without their scale; amounts are shown and exported in cents.
CENT = Decimal("0.01")
QUARTERS = [(q, f"Q{q}") for q in range(1, 5)]


class QuotaQuerySet(models.QuerySet):
    def of_quarter(self, year: int, quarter: int) -> QuotaQuerySet:
        return self.filter(fiscal_year=year, quarter=quarter)

    def target(self) -> Decimal | None:
        """The sum of these quotas: a team's target, or the company's; None if none is
        set, which the dashboard says rather than showing a target of zero."""
        total = self.aggregate(total=Sum("amount"))["total"]
        return None if total is None else total.quantize(CENT)

    def per_rep(self) -> dict[int, Decimal]:
        """Each rep's quota among these, by the rep's id."""
        return {rep: amount.quantize(CENT) for rep, amount in
                self.order_by().values_list("rep").annotate(Sum("amount"))}


class Quota(models.Model):
    """What one rep must close in one fiscal quarter, in the company currency, set by their
    manager. A team's target is the sum of its reps' quotas, the company's the sum of its
    teams'."""

    rep = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("rep"),
                            on_delete=models.PROTECT, related_name="quotas")
    # The rep's team when the quota was set: a rep who changes teams later leaves the
    # targets of past quarters where they were.
    team = models.ForeignKey(Team, verbose_name=_("team"), on_delete=models.PROTECT,
                             related_name="quotas")
    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"))
    quarter = models.PositiveSmallIntegerField(_("quarter"), choices=QUARTERS)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    set_at = models.DateTimeField(_("set"), default=timezone.now)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("set by"),
                               on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+")

    objects = QuotaQuerySet.as_manager()

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        ordering = ["-fiscal_year", "-quarter", "team", "rep"]
        constraints = [
            models.UniqueConstraint(fields=["rep", "fiscal_year", "quarter"],
                                    name="quota_once_per_quarter"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="quota_amount"),
        ]
        indexes = [models.Index(fields=["fiscal_year", "quarter", "team"],
                                name="quota_team_quarter")]

    def __str__(self) -> str:
        return f"{self.rep} FY{self.fiscal_year} Q{self.quarter}"

    @staticmethod
    def may_be_set_by(user: User, rep: User) -> bool:
        """The rep's manager (or a superuser) sets the quota."""
        return user.is_superuser or (user.is_manager and rep.team_id in user.team_ids
                                     and rep.pk != user.pk)

    @classmethod
    def set(cls, *, rep: User, fiscal_year: int, quarter: int, amount, by: User) -> Quota:
        """Set (or change) a rep's quota for a quarter; only their manager may."""
        if not cls.may_be_set_by(by, rep):
            raise ChangeForbidden(gettext("Only %s's manager sets their quota.") % rep)
        if not rep.is_rep or rep.team_id is None:
            raise InvalidChange(gettext("%s is not an account executive of a team.") % rep)
        quota, _created = cls.objects.update_or_create(
            rep=rep, fiscal_year=fiscal_year, quarter=quarter,
            defaults={"amount": amount, "team_id": rep.team_id, "set_by": by,
                      "set_at": timezone.now()},
        )
        return quota


class Target(models.Model):
    """A team's target as set before quotas existed: history, read-only. Migration 0002
    split each over the team's reps as quotas (docs/decisions.md)."""

    team = models.ForeignKey(Team, verbose_name=_("team"), on_delete=models.PROTECT,
                             related_name="targets")
    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"))
    quarter = models.PositiveSmallIntegerField(_("quarter"), choices=QUARTERS)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    set_at = models.DateTimeField(_("set"), default=timezone.now)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("set by"),
                               on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        verbose_name = _("former team target")
        verbose_name_plural = _("former team targets")
        ordering = ["-fiscal_year", "-quarter", "team"]
        constraints = [
            models.UniqueConstraint(fields=["team", "fiscal_year", "quarter"],
                                    name="target_once_per_quarter"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="target_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.team} FY{self.fiscal_year} Q{self.quarter}"


# Calls and snapshots live in modules of their own; importing them here registers them.
from forecasting.calls import CallKind, ForecastCall  # noqa: E402
from forecasting.entering import EnteringOpportunity, StoredQuarter  # noqa: E402
from forecasting.snapshots import Snapshot, SnapshotRow  # noqa: E402

__all__ = ["CallKind", "EnteringOpportunity", "ForecastCall", "Quota", "QuotaQuerySet",
           "Snapshot", "SnapshotRow", "StoredQuarter", "Target"]
