"""What changed in a quarter's forecast since a snapshot: the deals behind a moved Commit.

The snapshot's rows are compared with the opportunities as they stand now. Only deals
that concern the quarter count: expected to close in it then or now. An opportunity can
show up under more than one change (moved up a category and grew, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, F, Q
from django.utils.translation import gettext_lazy as _

from crm.models import ExchangeRate, company_currency, fiscal_quarter_bounds
from forecasting.snapshots import Snapshot, SnapshotRow
from pipeline.models import FieldChange
from pipeline.process import PROCESS, ForecastCategory, Stage

CENT = Decimal("0.01")
# Up or down is read along this order; Closed and Dead are changes of their own.
CATEGORY_ORDER = [ForecastCategory.OMITTED, ForecastCategory.PIPELINE,
                  ForecastCategory.BEST_CASE, ForecastCategory.COMMIT]

KINDS = {
    "new": _("New"),
    "won": _("Won"),
    "died": _("Died"),
    "moved_up": _("Moved up a category"),
    "moved_down": _("Moved down a category"),
    "amount_changed": _("Amount changed"),
    "pushed_out": _("Close date pushed out of the quarter"),
    "pulled_in": _("Close date brought into the quarter"),
}


@dataclass(frozen=True)
class Standing:
    """Where one opportunity stood: at the snapshot, or now."""

    stage: str
    category: str
    amount: Decimal
    currency: str
    amount_company: Decimal | None
    close_date: date

    @property
    def category_label(self) -> str:
        """The category as users know it; a won or parked deal by its stage."""
        if self.stage in (Stage.CLOSED, Stage.DEAD):
            return Stage(self.stage).label
        return ForecastCategory(self.category).label


@dataclass(frozen=True)
class Change:
    """One opportunity under one kind of change, with the amount that change is about
    in the company currency: what it was worth when it left the quarter's pipeline
    (died, pushed out), what it is worth now otherwise."""

    kind: str
    opportunity_id: int
    name: str
    owner: str
    then: Standing | None
    now: Standing
    pushes: int

    @property
    def amount(self) -> Decimal | None:
        if self.kind in ("died", "pushed_out"):
            return self.then.amount_company
        return self.now.amount_company

    @property
    def difference(self) -> Decimal | None:
        """Now minus then, for a changed amount."""
        if self.then is None or None in (self.then.amount_company, self.now.amount_company):
            return None
        return self.now.amount_company - self.then.amount_company


@dataclass
class Changes:
    snapshot: Snapshot
    quarter: tuple[int, int]
    lists: dict[str, list[Change]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    commit_then: Decimal = Decimal("0.00")
    commit_now: Decimal = Decimal("0.00")

    @property
    def sections(self) -> list[tuple[str, str, list[Change]]]:
        return [(kind, KINDS[kind], self.lists[kind]) for kind in KINDS]

    @property
    def count(self) -> int:
        return sum(len(found) for found in self.lists.values())


def changes_since(snapshot: Snapshot, opportunities, year: int, quarter: int) -> Changes:
    """What changed for these opportunities (a scope) in the quarter since the snapshot.
    Five queries however many deals: the deals now (with the snapshot's in the quarter
    as a subquery), their snapshot rows, the rates, the pushes."""
    first, after = fiscal_quarter_bounds(year, quarter)
    in_quarter = Q(expected_close_date__gte=first, expected_close_date__lt=after)
    then_in_quarter = SnapshotRow.objects.filter(in_quarter, snapshot=snapshot)
    now_rows = list(opportunities.filter(
        Q(pk__in=then_in_quarter.values("opportunity_id"))
        | (in_quarter & ~Q(stage__in=[Stage.CLOSED, Stage.DEAD]))
    ).order_by("name", "pk").values("pk", "name", "owner__first_name", "owner__last_name",
                                    "owner__username", "stage", "amount", "currency",
                                    "expected_close_date"))
    ids = [row["pk"] for row in now_rows]
    then = {row["opportunity_id"]: standing_then(row) for row in SnapshotRow.objects.filter(
        snapshot=snapshot, opportunity_id__in=ids).values(
        "opportunity_id", "stage", "category", "amount", "currency", "amount_company",
        "expected_close_date")}
    rates = dict(ExchangeRate.objects.values_list("currency", "rate"))
    rates[company_currency()] = Decimal(1)
    pushes = close_date_pushes(ids)
    found = Changes(snapshot=snapshot, quarter=(year, quarter))
    for row in now_rows:
        before, current = then.get(row["pk"]), standing_now(row, rates)
        for kind in kinds_of(before, current, first, after):
            found.lists[kind].append(Change(
                kind=kind, opportunity_id=row["pk"], name=row["name"], owner=owner_name(row),
                then=before, now=current, pushes=pushes.get(row["pk"], 0)))
        if (before and before.category == ForecastCategory.COMMIT and before.amount_company
                and first <= before.close_date < after):
            found.commit_then += before.amount_company
        if (current.category == ForecastCategory.COMMIT and current.amount_company
                and first <= current.close_date < after):
            found.commit_now += current.amount_company
    return found


def kinds_of(then: Standing | None, now: Standing, first: date, after: date) -> list[str]:
    """The kinds of change between two standings of one opportunity, for the quarter
    from `first` to before `after`."""
    if then is None:
        return ["new"]
    if not first <= then.close_date < after:
        return ["pulled_in"]
    if now.stage == Stage.CLOSED:
        return ["won"]
    if now.stage == Stage.DEAD:
        return ["died"]
    kinds = []
    then_rank = CATEGORY_ORDER.index(ForecastCategory(then.category))
    now_rank = CATEGORY_ORDER.index(ForecastCategory(now.category))
    if now_rank != then_rank:
        kinds.append("moved_up" if now_rank > then_rank else "moved_down")
    if (then.amount, then.currency) != (now.amount, now.currency):
        kinds.append("amount_changed")
    if not first <= now.close_date < after:
        kinds.append("pushed_out")
    return kinds


def standing_then(row: dict | None) -> Standing | None:
    if row is None:
        return None
    return Standing(stage=row["stage"], category=row["category"], amount=row["amount"],
                    currency=row["currency"], amount_company=row["amount_company"],
                    close_date=row["expected_close_date"])


def standing_now(row: dict, rates: dict[str, Decimal]) -> Standing:
    rate = rates.get(row["currency"])
    return Standing(
        stage=row["stage"], category=PROCESS[Stage(row["stage"])].category,
        amount=row["amount"], currency=row["currency"],
        amount_company=None if rate is None else (row["amount"] * rate).quantize(CENT),
        close_date=row["expected_close_date"])


def owner_name(row: dict) -> str:
    full = f"{row['owner__first_name']} {row['owner__last_name']}".strip()
    return full or row["owner__username"]


def close_date_pushes(opportunity_ids: list[int]) -> dict[int, int]:
    """How many times each opportunity's close date was moved later, in all its history
    (dates are stored as ISO text, which compares like the dates)."""
    if not opportunity_ids:
        return {}
    return dict(FieldChange.objects.filter(
        opportunity_id__in=opportunity_ids, field="expected_close_date",
        new_value__gt=F("old_value"),
    ).order_by().values_list("opportunity_id").annotate(count=Count("*")))
