"""Hygiene flags: forecast entries a manager should question (issue 12). A Best Case
opportunity expected to close more than three months out (process.md: one to three months,
four to five at most), a Commit opportunity whose close date has passed, and one whose
close date was pushed out twice or more this quarter."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import fiscal_quarter, fiscal_quarter_moments
from pipeline.models.history import FieldChange
from pipeline.process import ForecastCategory, Stage, category_stages

if TYPE_CHECKING:
    from pipeline.models.opportunity import Opportunity

# Pushed this often in one quarter, a close date says more about hope than about the deal.
PUSHES_FLAGGED = 2


class HygieneFlag(models.TextChoices):
    BEST_CASE_FAR_OUT = "best_case_far_out", _("Best Case, closing more than three months out")
    COMMIT_OVERDUE = "commit_overdue", _("Commit, close date passed")
    PUSHED_AGAIN = "pushed_again", _("Close date pushed twice or more this quarter")


def three_months_after(day: date) -> date:
    """The same day three calendar months later (or that month's last day)."""
    index = day.month + 2  # months since January, three on
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))


def quarter_start(today: date) -> datetime:
    """The moment today's fiscal quarter began."""
    return fiscal_quarter_moments(*fiscal_quarter(today))[0]


def close_date_pushes(since: datetime) -> models.QuerySet:
    """The close-date changes since `since` that moved the date later: ISO dates compare
    as text, so a push is a change whose new value sorts after the old one."""
    return FieldChange.objects.filter(field="expected_close_date", changed_at__gte=since,
                                      new_value__gt=F("old_value"))


def pushed_again(today: date) -> models.QuerySet:
    """The ids of the opportunities pushed often enough this quarter to be flagged: one
    grouped pass over the quarter's few changes, where a count per opportunity would run
    once for every open one (bench/forecast.py: seconds at 100,000)."""
    return (close_date_pushes(quarter_start(today)).order_by().values("opportunity")
            .annotate(count=Count("*")).filter(count__gte=PUSHES_FLAGGED)
            .values("opportunity"))


class HygieneQuerySet(models.QuerySet):
    def with_close_date_pushes(self, today: date | None = None) -> HygieneQuerySet:
        """Each row with `close_date_pushes`: its pushes in today's fiscal quarter."""
        today = today or timezone.localdate()
        pushes = (close_date_pushes(quarter_start(today)).filter(opportunity=OuterRef("pk"))
                  .order_by().values("opportunity").annotate(count=Count("*")).values("count"))
        return self.annotate(close_date_pushes=Coalesce(Subquery(pushes), Value(0)))

    def needing_attention(self, today: date | None = None) -> HygieneQuerySet:
        """Open opportunities carrying at least one hygiene flag, in one query."""
        today = today or timezone.localdate()
        return self.exclude(stage__in=[Stage.CLOSED, Stage.DEAD]).with_close_date_pushes(
            today).filter(
            Q(stage__in=category_stages(ForecastCategory.BEST_CASE),
              expected_close_date__gt=three_months_after(today))
            | Q(stage__in=category_stages(ForecastCategory.COMMIT),
                expected_close_date__lt=today)
            | Q(pk__in=pushed_again(today))
        )


def count_close_date_pushes(cards: list[Opportunity], today: date | None = None) -> None:
    """Give each card its `close_date_pushes` this quarter, in one grouped query."""
    today = today or timezone.localdate()
    pushes = dict(
        close_date_pushes(quarter_start(today))
        .filter(opportunity_id__in=[card.pk for card in cards])
        .values_list("opportunity_id").annotate(count=Count("*")).order_by())
    for card in cards:
        card.close_date_pushes = pushes.get(card.pk, 0)


class Hygiene:
    """The flags on one opportunity. Reads `close_date_pushes` where a query annotated it
    (with_close_date_pushes, count_close_date_pushes); counts them itself otherwise."""

    def hygiene_flags(self: Opportunity, today: date | None = None) -> list[HygieneFlag]:
        if self.stage in (Stage.CLOSED, Stage.DEAD):
            return []
        today = today or timezone.localdate()
        flags = []
        category = self.forecast_category
        if (category == ForecastCategory.BEST_CASE
                and self.expected_close_date > three_months_after(today)):
            flags.append(HygieneFlag.BEST_CASE_FAR_OUT)
        if category == ForecastCategory.COMMIT and self.expected_close_date < today:
            flags.append(HygieneFlag.COMMIT_OVERDUE)
        pushes = getattr(self, "close_date_pushes", None)
        if pushes is None:
            pushes = close_date_pushes(quarter_start(today)).filter(opportunity=self).count()
        if pushes >= PUSHES_FLAGGED:
            flags.append(HygieneFlag.PUSHED_AGAIN)
        return flags
