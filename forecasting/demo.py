"""`manage.py seed_forecast`: the forecast side of the demo, on top of seed_demo's data.

Quotas for every rep from four quarters back to the next one, sized on what each rep
actually closed; each rep's calls (weekly in the quarter under way, first, mid-quarter and
last in the past ones) with the manager's adjustments and team calls; the weekly
snapshots (demo_history.py); and this week's changes, made through the model so the
history records them. Calls are the system's figures of their day times each rep's habit:
one calls it straight, one high, one low, so accuracy tells them apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from crm.models import User, fiscal_quarter, fiscal_quarter_bounds, fiscal_quarter_moments
from forecasting.calls import CallKind, ForecastCall
from forecasting.coverage import as_of, converted, previous_quarters
from forecasting.models import Quota
from forecasting.rollups import quarter_forecast, rates_in_force
from pipeline.models import Opportunity, Via
from pipeline.process import PROCESS, ForecastCategory, Stage

THOUSAND = Decimal(1000)
# How each rep's call departs from the system's figures, by their place in the team.
HABITS = (Decimal("1.00"), Decimal("1.20"), Decimal("0.85"))
ADJUSTED_HABIT = Decimal("1.20")  # the manager trims this optimist's calls
SMALLEST_QUOTA = Decimal(20000)


def rounded(amount: Decimal) -> Decimal:
    return (amount / THOUSAND).quantize(Decimal(1)) * THOUSAND


def demo_reps() -> list[User]:
    return [user for user in User.objects.filter(team__isnull=False, is_active=True)
            .order_by("username") if user.is_rep]


def manager_of(rep: User) -> User | None:
    return next((user for user in User.objects.filter(team_id=rep.team_id).order_by("pk")
                 if user.is_manager), None)


def demo_quarters(today) -> tuple[list[tuple[int, int]], tuple[int, int], tuple[int, int]]:
    """(the four past quarters, oldest first; this one; the next one)."""
    current = fiscal_quarter(today)
    index = current[0] * 4 + current[1]
    return previous_quarters(*current, 4)[::-1], current, (index // 4, index % 4 + 1)


def set_quotas(reps: list[User], today) -> int:
    """Each rep's quota for the last four quarters, this one and the next: past ones
    about what they closed on average, a little more each quarter, so some quarters are
    missed and some beaten; this one above what is closed already, so there is a gap that
    about two fifths of the open pipeline would fill. Quotas already set stay as set."""
    past, current, following = demo_quarters(today)
    closed: dict[int, Decimal] = {}
    for year, quarter in past:
        _total, per_owner = quarter_forecast(Opportunity.objects.filter(owner__in=reps),
                                             year, quarter)
        for pk, figures in per_owner.items():
            closed[pk] = closed.get(pk, Decimal(0)) + figures.closed
    _total, now = quarter_forecast(Opportunity.objects.filter(owner__in=reps), *current)
    quotas = []
    for rep in reps:
        base = max(rounded(closed.get(rep.pk, Decimal(0)) / 4), SMALLEST_QUOTA)
        amounts = [rounded(base * (Decimal("0.9") + step * Decimal("0.05")))
                   for step in range(len(past))]
        figures = now.get(rep.pk)
        still_needed = base / 3 if figures is None else max(
            figures.open_pipeline * Decimal("0.4"), base / 3)
        current_quota = rounded((figures.closed if figures else 0) + still_needed)
        amounts += [current_quota, rounded(max(base, current_quota) * Decimal("1.05"))]
        quotas += [Quota(rep=rep, team_id=rep.team_id, fiscal_year=year, quarter=quarter,
                         amount=amount, set_by=manager_of(rep))
                   for (year, quarter), amount in zip([*past, current, following], amounts,
                                                      strict=True)]
    return len(Quota.objects.bulk_create(quotas, ignore_conflicts=True))


def call_moments(year: int, quarter: int, now: datetime) -> list[datetime]:
    """When calls were made in a quarter: weekly in the one under way (at least one), the
    first week, mid-quarter and the last week in one that ended."""
    start, end = fiscal_quarter_moments(year, quarter)
    start = start + timedelta(days=2, hours=10)
    if end <= now:
        return [start, start + timedelta(days=38), end - timedelta(days=5)]
    weekly = [moment for week in range(14)
              if (moment := start + timedelta(weeks=week)) < now]
    return weekly or [now - timedelta(minutes=1)]


def system_at(reps: list[User], year: int, quarter: int, moment: datetime, rates
              ) -> dict[int, tuple[Decimal, Decimal]]:
    """Each rep's (Commit, Best Case) as a call counts them, as the history says they
    stood at `moment`: won in the quarter by then, plus the open deals of each category.
    Two grouped queries for all the reps."""
    start, _end = fiscal_quarter_moments(year, quarter)
    first, after = fiscal_quarter_bounds(year, quarter)
    opportunities = Opportunity.objects.filter(owner__in=reps)
    sums = {rep.pk: {"won": Decimal(0), ForecastCategory.COMMIT: Decimal(0),
                     ForecastCategory.BEST_CASE: Decimal(0)} for rep in reps}
    for owner, currency, amount in (
            opportunities.filter(stage=Stage.CLOSED, stage_entered_at__gte=start,
                                 stage_entered_at__lt=moment)
            .order_by().values_list("owner_id", "currency").annotate(Sum("amount"))):
        sums[owner]["won"] += converted([(currency, amount)], rates)
    for owner, stage, currency, amount in (
            as_of(opportunities.filter(created_at__lt=moment), moment)
            .filter(close_date_then__gte=first, close_date_then__lt=after)
            .order_by().values_list("owner_id", "stage_then", "currency_then")
            .annotate(Sum("amount_then"))):
        category = PROCESS[Stage(stage)].category
        if category in sums[owner]:
            sums[owner][category] += converted([(currency, amount)], rates)
    return {pk: (rep_sums["won"] + rep_sums[ForecastCategory.COMMIT],
                 rep_sums["won"] + rep_sums[ForecastCategory.COMMIT]
                 + rep_sums[ForecastCategory.BEST_CASE]) for pk, rep_sums in sums.items()}


def called_for(system: tuple[Decimal, Decimal], quota: Decimal, habit: Decimal
               ) -> tuple[Decimal, Decimal]:
    """A rep's call: the system's figures, but never under half the quota (a rep calls
    what they mean to land, not only what is in Commit today), times their habit."""
    commit = rounded(max(system[0], quota / 2) * habit)
    return commit, max(rounded(system[1] * habit), commit + rounded(quota / 5))


def make_calls(reps: list[User], now: datetime) -> int:
    """Every rep's calls of the last four quarters and this one, the manager's
    adjustments of the optimist's calls and the manager's team calls."""
    rates = rates_in_force()
    past, current, _following = demo_quarters(timezone.localdate(now))
    quotas = {(quota.rep_id, quota.fiscal_year, quota.quarter): quota.amount
              for quota in Quota.objects.filter(rep__in=reps)}
    managers = {rep.pk: manager_of(rep) for rep in reps}
    calls = []
    for year, quarter in [*past, current]:
        for moment in call_moments(year, quarter, now):
            team_calls: dict[int, list[Decimal]] = {}
            systems = system_at(reps, year, quarter, moment, rates)
            for place, rep in enumerate(reps):
                habit = HABITS[place % len(HABITS)]
                system = systems[rep.pk]
                called = called_for(system, quotas.get((rep.pk, year, quarter),
                                                       SMALLEST_QUOTA), habit)
                common = {"rep": rep, "team_id": rep.team_id, "fiscal_year": year,
                          "quarter": quarter, "system_commit": system[0],
                          "system_best_case": system[1]}
                calls.append(ForecastCall(kind=CallKind.REP, commit=called[0],
                                          best_case=called[1], made_by=rep, made_at=moment,
                                          note="Weekly call.", **common))
                manager = managers[rep.pk]
                if manager is None:
                    continue
                if habit == ADJUSTED_HABIT:
                    called = (rounded(called[0] / habit), rounded(called[1] / habit))
                    calls.append(ForecastCall(
                        kind=CallKind.ADJUSTMENT, commit=called[0], best_case=called[1],
                        made_by=manager, made_at=moment + timedelta(hours=4),
                        note="Trimmed to what the deals support.", **common))
                team_call = team_calls.setdefault(rep.team_id, [Decimal(0), Decimal(0),
                                                                manager.pk])
                team_call[0] += called[0]
                team_call[1] += called[1]
            for team_id, (commit, best_case, manager_id) in team_calls.items():
                calls.append(ForecastCall(
                    kind=CallKind.TEAM, rep=None, team_id=team_id, fiscal_year=year,
                    quarter=quarter, commit=commit, best_case=best_case,
                    system_commit=commit, system_best_case=best_case,
                    made_by_id=manager_id, made_at=moment + timedelta(hours=5),
                    note="The team's call."))
    return len(ForecastCall.objects.bulk_create(calls))


def this_weeks_changes(today) -> int:
    """Two changes since the latest snapshot, made by their owners through the model
    (history rows and all): the biggest deal closing this quarter grows by a tenth, the
    next one slips into the next quarter. How many were made."""
    first, after = fiscal_quarter_bounds(*fiscal_quarter(today))
    biggest = list(Opportunity.objects.open().filter(
        expected_close_date__gte=max(first, today), expected_close_date__lt=after)
        .select_related("owner").order_by("-amount", "pk")[:2])
    for opportunity, change in zip(biggest, (
            lambda deal: {"amount": (deal.amount * Decimal("1.1")).quantize(THOUSAND)},
            lambda deal: {"expected_close_date": after + timedelta(days=14)}), strict=False):
        opportunity.update_details(by=opportunity.owner, via=Via.SEED, **change(opportunity))
    return len(biggest)
