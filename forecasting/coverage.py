"""The coverage actually needed, from the app's own history (process.md, Pipeline
coverage): for each of the last four quarters, the pipeline that was open at its start and
expected to close in it, at its amounts of that day, against what closed in it.

The state of that day is rebuilt from the change history, in SQL: an opportunity's stage
at a moment is the stage its last change before then led to; failing one, the stage its
first change after then left; failing both, the stage it is in. Amounts, currencies and
close dates read their field changes the same way.

The state of that day is the state as it stood once undone moves are taken back: an undo
and the move it undoes are left out, so a move made a minute before the quarter began and
undone a minute after never happened. Reopens are changes like any other. A handful of
grouped queries however many opportunities and changes; a finished quarter's entering
pipeline is rebuilt once and stored (forecasting/entering.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Case, F, Min, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Cast, Coalesce

from crm.models import fiscal_quarter_bounds, fiscal_quarter_moments
from forecasting.entering import stored_entering, stored_quarters
from forecasting.rollups import CENT, rates_in_force
from pipeline.models import FieldChange, OpportunityQuerySet, StageChange
from pipeline.models.queries import FORECAST_OPEN
from pipeline.process import Stage, category_stages

QUARTERS_LOOKED_BACK = 4
# Fewer quarters with history than this, and a ratio would be one quarter's accident.
QUARTERS_NEEDED = 2


@dataclass(frozen=True)
class PastQuarter:
    """One past quarter: the pipeline that entered it and what closed in it."""

    name: str
    pipeline: Decimal
    closed: Decimal
    # Whether the app's records reach back to the quarter's start: before them there was
    # no pipeline to rebuild, and a ratio would be invented.
    recorded: bool

    @property
    def ratio(self) -> Decimal | None:
        if not self.recorded or not self.closed:
            return None
        return (self.pipeline / self.closed).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class HistoricalCoverage:
    quarters: list[PastQuarter]

    @property
    def usable(self) -> list[PastQuarter]:
        return [quarter for quarter in self.quarters if quarter.ratio is not None]

    @property
    def ratio(self) -> Decimal | None:
        """Pipeline over closed across the quarters with history; None with too few."""
        usable = self.usable
        if len(usable) < QUARTERS_NEEDED:
            return None
        return (sum(q.pipeline for q in usable) / sum(q.closed for q in usable)
                ).quantize(Decimal("0.1"))


def previous_quarters(year: int, quarter: int, count: int) -> list[tuple[int, int]]:
    """The `count` fiscal quarters before this one, latest first."""
    index = year * 4 + quarter - 1
    return [((index - back) // 4, (index - back) % 4 + 1) for back in range(1, count + 1)]


def historical_coverage(opportunities: OpportunityQuerySet, year: int, quarter: int
                        ) -> HistoricalCoverage:
    """The last four quarters before this one, for these opportunities. A finished
    quarter's entering pipeline is read from what is stored for it (forecasting/entering.py),
    stored on first need; what closed is read live, as imports may add to it."""
    rates = rates_in_force()
    first_record = opportunities.aggregate(first=Min("created_at"))["first"]
    past = previous_quarters(year, quarter, QUARTERS_LOOKED_BACK)
    stored = stored_entering(opportunities, stored_quarters(past))
    closed = closed_in(opportunities, past)
    quarters = []
    for past_year, past_quarter in past:
        start, _end = fiscal_quarter_moments(past_year, past_quarter)
        entering = stored.get((past_year, past_quarter))
        quarters.append(PastQuarter(
            name=f"{past_year}-Q{past_quarter}",
            pipeline=(converted(entering, rates) if entering is not None else
                      pipeline_entering(opportunities, past_year, past_quarter, rates)),
            closed=converted(closed.get((past_year, past_quarter), []), rates),
            recorded=first_record is not None and first_record < start,
        ))
    return HistoricalCoverage(quarters)


def closed_in(opportunities: OpportunityQuerySet, quarters: list[tuple[int, int]]
              ) -> dict[tuple[int, int], list[tuple[str, Decimal]]]:
    """What was won in each of these quarters (as won_in_quarter counts it), as
    (currency, amount) sums; one grouped query over the span of them all."""
    moments = {quarter: fiscal_quarter_moments(*quarter) for quarter in quarters}
    index = Case(*(When(stage_entered_at__gte=start, stage_entered_at__lt=end,
                        then=Value(number)) for number, (start, end)
                   in enumerate(moments.values())), output_field=models.IntegerField())
    # A closed opportunity is final: it entered its stage when it was won.
    rows = (opportunities.filter(stage=Stage.CLOSED,
                                 stage_entered_at__gte=min(s for s, _e in moments.values()),
                                 stage_entered_at__lt=max(e for _s, e in moments.values()))
            .order_by().annotate(index=index).values_list("index", "currency")
            .annotate(Sum("amount")))
    sums: dict[tuple[int, int], list] = {quarter: [] for quarter in quarters}
    for number, currency, amount in rows:
        if number is not None:
            sums[quarters[number]].append((currency, amount))
    return sums


def entering_opportunities(opportunities: OpportunityQuerySet, year: int, quarter: int
                           ) -> OpportunityQuerySet:
    """The open forecast (Pipeline, Best Case, Commit) at the quarter's first moment,
    expected then to close in it, with that day's `amount_then` and `currency_then`."""
    start, _end = fiscal_quarter_moments(year, quarter)
    first, after = fiscal_quarter_bounds(year, quarter)
    open_stages = [stage for category in FORECAST_OPEN for stage in category_stages(category)]
    return (as_of(opportunities.filter(created_at__lt=start), start)
            .filter(stage_then__in=open_stages, close_date_then__gte=first,
                    close_date_then__lt=after))


def pipeline_entering(opportunities: OpportunityQuerySet, year: int, quarter: int,
                      rates: dict[str, Decimal]) -> Decimal:
    """The pipeline that entered the quarter at that day's amounts; one grouped query."""
    rows = (entering_opportunities(opportunities, year, quarter)
            .order_by().values_list("currency_then").annotate(Sum("amount_then")))
    return converted(rows, rates)


def converted(rows, rates: dict[str, Decimal]) -> Decimal:
    """(currency, amount) rows summed in the company currency; amounts in a currency
    without a rate are left out (the dashboard counts and says them for its quarter)."""
    return sum(((amount * rates[currency]).quantize(CENT)
                for currency, amount in rows if currency in rates and amount is not None),
               Decimal("0.00"))


def standing_moves() -> models.QuerySet:
    """The stage changes that stand: neither undos nor undone. A move is undone when the
    next later change of its opportunity is an undo (the changes of one multi-stage move
    share their moment, and one undo takes them all back)."""
    next_is_undo = Subquery(
        StageChange.objects.filter(opportunity=OuterRef("opportunity"),
                                   changed_at__gt=OuterRef("changed_at"))
        .order_by("changed_at", "pk").values("is_undo")[:1])
    return StageChange.objects.filter(is_undo=False).annotate(
        undone=Coalesce(next_is_undo, Value(False))).filter(undone=False)


def as_of(opportunities: OpportunityQuerySet, moment: datetime) -> OpportunityQuerySet:
    """Each opportunity with `stage_then`, `amount_then`, `currency_then` and
    `close_date_then`: what they were at `moment`."""

    def then(changes, before: str, after: str, current: str, output=None, **where):
        changes = changes.filter(opportunity=OuterRef("pk"), **where)
        last_before = Subquery(changes.filter(changed_at__lt=moment)
                               .order_by("-changed_at", "-pk").values(before)[:1])
        first_after = Subquery(changes.filter(changed_at__gte=moment)
                               .order_by("changed_at", "pk").values(after)[:1])
        if output is None:
            output = models.CharField()
        else:  # field changes keep their values as text
            last_before, first_after = Cast(last_before, output), Cast(first_after, output)
        return Coalesce(last_before, first_after, F(current), output_field=output)

    def field(name: str, output=None):
        return then(FieldChange.objects, "new_value", "old_value", name, output, field=name)

    return opportunities.annotate(
        stage_then=then(standing_moves(), "to_stage", "from_stage", "stage"),
        amount_then=field("amount", models.DecimalField(max_digits=14, decimal_places=2)),
        currency_then=field("currency"),
        close_date_then=field("expected_close_date", models.DateField()),
    )
