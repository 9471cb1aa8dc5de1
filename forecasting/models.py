"""Targets per team and fiscal quarter; rollups and snapshots build on them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Team, User
from pipeline.models import ChangeForbidden


class Target(models.Model):
    """What a team must close in one fiscal quarter, in the company currency."""

    team = models.ForeignKey(Team, verbose_name=_("team"), on_delete=models.PROTECT,
                             related_name="targets")
    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"))
    quarter = models.PositiveSmallIntegerField(
        _("quarter"), choices=[(q, f"Q{q}") for q in range(1, 5)]
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    set_at = models.DateTimeField(_("set"), default=timezone.now)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("set by"),
                               on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["-fiscal_year", "-quarter", "team"]
        constraints = [
            models.UniqueConstraint(fields=["team", "fiscal_year", "quarter"],
                                    name="target_once_per_quarter"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="target_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.team} FY{self.fiscal_year} Q{self.quarter}"

    @staticmethod
    def may_be_set_by(user: User, team: Team) -> bool:
        return user.is_superuser or (user.is_manager and team.pk in user.team_ids)

    @classmethod
    def set(cls, *, team: Team, fiscal_year: int, quarter: int, amount, by: User) -> Target:
        """Set (or change) a team's target for a quarter; only its manager may."""
        if not cls.may_be_set_by(by, team):
            raise ChangeForbidden(gettext("Only the team's manager sets its targets."))
        target, _created = cls.objects.update_or_create(
            team=team, fiscal_year=fiscal_year, quarter=quarter,
            defaults={"amount": amount, "set_by": by, "set_at": timezone.now()},
        )
        return target


# Calls and snapshots live in modules of their own; importing them here registers them.
from forecasting.calls import CallKind, ForecastCall  # noqa: E402
from forecasting.snapshots import Snapshot, SnapshotRow  # noqa: E402

__all__ = ["CallKind", "ForecastCall", "Snapshot", "SnapshotRow", "Target"]
