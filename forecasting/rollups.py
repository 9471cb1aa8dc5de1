"""The quarter's forecast from where each opportunity stands (process.md, forecast
categories): Closed (won in the quarter, by the date it closed), and Commit, Best Case and
Pipeline (open opportunities expected to close in the quarter), in the company currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from crm.models import ExchangeRate, company_currency
from pipeline.models import OpportunityQuerySet
from pipeline.process import PROCESS, ForecastCategory, Stage

CENT = Decimal("0.01")
CATEGORIES = (ForecastCategory.CLOSED, ForecastCategory.COMMIT, ForecastCategory.BEST_CASE,
              ForecastCategory.PIPELINE)


@dataclass
class Figures:
    """One row of the forecast: amounts per category, the weighted open pipeline, and
    how many amounts had no exchange rate (left out, never summed raw)."""

    amounts: dict[str, Decimal] = field(
        default_factory=lambda: {category.value: Decimal("0.00") for category in CATEGORIES})
    weighted: Decimal = Decimal("0.00")
    unconverted: int = 0

    @property
    def closed(self) -> Decimal:
        return self.amounts[ForecastCategory.CLOSED]

    @property
    def open_pipeline(self) -> Decimal:
        """What may still close in the quarter: Commit, Best Case and Pipeline."""
        return sum((self.amounts[c] for c in CATEGORIES if c != ForecastCategory.CLOSED),
                   Decimal("0.00"))

    def gap(self, target: Decimal | None) -> Decimal | None:
        return None if target is None else max(target - self.closed, Decimal("0.00"))

    def coverage(self, target: Decimal | None) -> Decimal | None:
        """Open pipeline over what is still needed; None when nothing is needed."""
        gap = self.gap(target)
        if not gap:
            return None
        return (self.open_pipeline / gap).quantize(Decimal("0.1"))

    def add(self, category: str, amount: Decimal, probability: int) -> None:
        self.amounts[category] += amount
        if category != ForecastCategory.CLOSED:
            self.weighted += (amount * probability / 100).quantize(CENT)


def rates_in_force() -> dict[str, Decimal]:
    """Each currency's rate into the company currency, the company's own included."""
    rates = dict(ExchangeRate.objects.values_list("currency", "rate"))
    rates[company_currency()] = Decimal(1)
    return rates


def quarter_forecast(opportunities: OpportunityQuerySet, year: int, quarter: int
                     ) -> tuple[Figures, dict[int, Figures]]:
    """The forecast of these opportunities for a fiscal quarter: in all, and per owner.
    Two grouped queries however many opportunities."""
    rows = (opportunities.behind_forecast(year, quarter).order_by()
            .values_list("owner_id", "stage", "currency")
            .annotate(amount=Sum("amount"), count=Count("*")))
    rates = rates_in_force()
    total, per_owner = Figures(), {}
    for owner_id, stage, currency, amount, count in rows:
        rule = PROCESS[Stage(stage)]
        for figures in (total, per_owner.setdefault(owner_id, Figures())):
            if currency not in rates:
                figures.unconverted += count
                continue
            figures.add(rule.category, (amount * rates[currency]).quantize(CENT),
                        rule.probability)
    return total, per_owner
