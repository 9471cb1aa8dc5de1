"""Builders shared by the forecast's tests: a team, deals set seed-style, a history that
crosses quarter boundaries, and the browser fixtures of tests/pipeline."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import User, fiscal_quarter, fiscal_quarter_bounds, fiscal_quarter_moments
from forecasting.coverage import previous_quarters
from forecasting.models import Quota
from pipeline.models import FieldChange, Opportunity, StageChange, Via
from pipeline.process import Stage
from tests.factories import (
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    UserFactory,
)


def this_quarter():
    year, quarter = fiscal_quarter(timezone.localdate())
    first, after = fiscal_quarter_bounds(year, quarter)
    return year, quarter, first, after


def quarter_back(back: int) -> tuple[int, int]:
    """The fiscal quarter `back` quarters before this one (0: this one)."""
    year, quarter = fiscal_quarter(timezone.localdate())
    return (year, quarter) if back == 0 else previous_quarters(year, quarter, back)[-1]


def quarter_name(back: int) -> str:
    year, quarter = quarter_back(back)
    return f"{year}-Q{quarter}"


def moment(back: int, days: float = 0) -> datetime:
    """`days` after the first moment of the quarter `back` quarters ago."""
    return fiscal_quarter_moments(*quarter_back(back))[0] + timedelta(days=days)


def first_day(back: int, days: int = 0) -> date:
    return fiscal_quarter_bounds(*quarter_back(back))[0] + timedelta(days=days)


def deal(owner, stage, amount, *, currency="EUR", closes=None, entered=None, **fields):
    """Seed-style: the stage set directly, as test code may, knowingly. Closes on the
    quarter's last day unless told: never passed, always in this quarter."""
    year, quarter, first, after = this_quarter()
    return OpportunityFactory(
        owner=owner, stage=stage, amount=Decimal(amount), currency=currency,
        expected_close_date=closes or after - timedelta(days=1),
        stage_entered_at=entered or timezone.now(), **fields)


def moves(opportunity: Opportunity, *steps) -> Opportunity:
    """Write stage changes seed-style, as (from, to, when[, is_undo]); the opportunity
    ends in the last one's stage, entered then."""
    for source, target, when, *undo in steps:
        StageChange.objects.create(opportunity=opportunity, from_stage=source,
                                   to_stage=target, changed_at=when, via=Via.PAGE,
                                   is_undo=bool(undo and undo[0]))
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=target, stage_entered_at=when)
    return Opportunity.objects.get(pk=opportunity.pk)


def changed(opportunity: Opportunity, field: str, old, new, when: datetime) -> None:
    """A field change written seed-style (the opportunity keeps its current value)."""
    text = {date: date.isoformat}
    FieldChange.objects.create(
        opportunity=opportunity, field=field, changed_at=when, via=Via.PAGE,
        old_value=text.get(type(old), str)(old), new_value=text.get(type(new), str)(new))


def figure(page: str, name: str) -> str:
    """A dashboard figure as a reader sees it, tags stripped."""
    start = page.index(f'data-figure="{name}">') + len(f'data-figure="{name}">')
    return re.sub(r"<[^>]+>", "", page[start:page.index("</dd>", start)])


@pytest.fixture
def team():
    manager = ManagerFactory(first_name="Maria", last_name="Manager")
    return (manager, RepFactory(team=manager.team, first_name="Anna", last_name="Alder"),
            RepFactory(team=manager.team, first_name="Ben", last_name="Birch"))


@dataclass
class Quarterly:
    """The fixture crossing quarter boundaries (see `quarterly`)."""

    manager: User
    anna: User
    ben: User
    outsider: User
    deals: dict[str, Opportunity]


@pytest.fixture
def quarterly(team) -> Quarterly:
    """Four quarters of one team (rates: 1 USD = 0.5 EUR), written seed-style.

    Two quarters ago ("C-2") and last quarter ("C-1"), rebuilt from the history:
    - Alpha (Anna): entered C-2 in Discovering at 100,000; raised to 120,000 in C-2 and won
      there. C-2: 100,000 entering, 120,000 closed.
    - Bravo (Ben, 200,000 USD = 100,000 EUR): in Confirming at C-2's start, closing in
      C-2; its close date pushed into C-1, it entered C-1 too, then died.
    - Charlie (Anna, 50,000): died in C-2, reopened, in Validating at C-1's start, closing
      in C-1, won in C-1.
    - Delta (Ben, 80,000): moved to Discovering just before C-1 and undone a minute later:
      at C-1's start it stood in Identifying, out of the forecast.
    C-1: 150,000 entering, 50,000 closed, 3.0x. C-2: 200,000 entering, 120,000 closed,
    1.7x. The records start inside C-3: C-3 and C-4 have no history. Needed: 350,000 over
    170,000, 2.1x.

    This quarter: Foxtrot, commit 30,000 (Anna); Golf, best case 20,000 USD = 10,000 EUR
    (Ben); Hotel, pipeline 40,000 (Ben), its close date pushed twice this quarter; India,
    won this quarter, 25,000 (Anna). Flagged as well: Juliet (Anna), best case closing four
    months out, and Kilo (Ben), commit whose close date passed before this quarter. Quotas:
    Anna 60,000, Ben 40,000: the team's target is 100,000. Another team's rep has a deal
    (Lima, commit 500,000) and a quota (999) nobody here sees.
    """
    manager, anna, ben = team
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    year, quarter, first, after = this_quarter()

    def history_deal(owner, name, amount, currency, closes, created):
        return OpportunityFactory(owner=owner, name=name, amount=Decimal(amount),
                                  currency=currency, expected_close_date=closes,
                                  created_at=created)

    alpha = history_deal(anna, "Alpha", "120000", "EUR", first_day(2, 50), moment(3, 10))
    changed(alpha, "amount", "100000.00", "120000.00", moment(2, 5))
    alpha = moves(alpha, ("identifying", "discovering", moment(3, 20)),
                  ("discovering", "validating", moment(2, 10)),
                  ("validating", "confirming", moment(2, 20)),
                  ("confirming", "negotiating", moment(2, 30)),
                  ("negotiating", "finalizing", moment(2, 35)),
                  ("finalizing", "pending", moment(2, 38)),
                  ("pending", "closed", moment(2, 40)))

    bravo = history_deal(ben, "Bravo", "200000", "USD", first_day(1, 20), moment(3, 15))
    changed(bravo, "expected_close_date", first_day(2, 60), first_day(1, 20), moment(2, 70))
    bravo = moves(bravo, ("identifying", "discovering", moment(3, 16)),
                  ("discovering", "validating", moment(3, 17)),
                  ("validating", "confirming", moment(3, 30)),
                  ("confirming", "dead", moment(1, 30)))

    charlie = history_deal(anna, "Charlie", "50000", "EUR", first_day(1, 30), moment(3, 20))
    charlie = moves(charlie, ("identifying", "discovering", moment(3, 21)),
                    ("discovering", "dead", moment(2, 10)),
                    ("dead", "identifying", moment(2, 80)),
                    ("identifying", "discovering", moment(2, 81)),
                    ("discovering", "validating", moment(2, 85)),
                    ("validating", "confirming", moment(1, 10)),
                    ("confirming", "negotiating", moment(1, 20)),
                    ("negotiating", "finalizing", moment(1, 30)),
                    ("finalizing", "pending", moment(1, 35)),
                    ("pending", "closed", moment(1, 40)))

    delta = history_deal(ben, "Delta", "80000", "EUR", first_day(1, 10), moment(2, 1))
    delta = moves(delta, ("identifying", "discovering", moment(1, -1 / 24 / 60)),
                  ("discovering", "identifying", moment(1, 1 / 24 / 60), True))

    deals = {"Alpha": alpha, "Bravo": bravo, "Charlie": charlie, "Delta": delta}
    deals["Foxtrot"] = deal(anna, Stage.NEGOTIATING, "30000", name="Foxtrot")
    deals["Golf"] = deal(ben, Stage.CONFIRMING, "20000", currency="USD", name="Golf")
    hotel = deal(ben, Stage.DISCOVERING, "40000", name="Hotel",
                 closes=after - timedelta(days=3))
    for pushed_to in (after - timedelta(days=2), after - timedelta(days=1)):
        hotel.update_details(by=ben, expected_close_date=pushed_to)
    deals["Hotel"] = hotel
    deals["India"] = deal(anna, Stage.CLOSED, "25000", name="India")
    deals["Juliet"] = deal(anna, Stage.CONFIRMING, "70000", name="Juliet",
                           closes=timezone.localdate() + timedelta(days=125))
    deals["Kilo"] = deal(ben, Stage.FINALIZING, "15000", name="Kilo",
                         closes=first - timedelta(days=1))
    outsider = RepFactory(first_name="Otto", last_name="Outside")
    deals["Lima"] = deal(outsider, Stage.NEGOTIATING, "500000", name="Lima")
    for rep, amount in ((anna, "60000"), (ben, "40000")):
        Quota.set(rep=rep, fiscal_year=year, quarter=quarter, amount=Decimal(amount),
                  by=manager)
    Quota.set(rep=outsider, fiscal_year=year, quarter=quarter, amount=Decimal("999"),
              by=UserFactory(is_superuser=True))
    return Quarterly(manager, anna, ben, outsider, deals)
