"""The pipeline that entered each finished quarter, stored once (forecasting/coverage.py
rebuilds it from the change history, which took most of the dashboard's 22 s at a million
opportunities).

What is stored is each opportunity that was open in the forecast at the quarter's first
moment and expected then to close in it, with that day's amount and currency: one row per
opportunity, not per scope, so every scope (company, team, rep, a manager's view) is read
by joining its own opportunities, and an owner or a team that changes later moves the rows
with the opportunity. Amounts are converted when read, with the rates in force, as the
rebuilt figure is.

Why a stored quarter never goes stale: the state at a moment reads the last standing change
before it, else the first after, else the current value; history is append-only and dated
when written. The exceptions are bounded: an undo reaches back two minutes
(Opportunity.UNDO_WINDOW), and an import writes a history row on a past close date, but
only for a won or lost deal created then, which no quarter's entering pipeline can hold
(it was never open, and not yet created before that day). What closed in a quarter and the
first record, which imports do change, are read live and never stored. A quarter is
stored only once it has ended.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, models, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import fiscal_quarter_moments
from pipeline.models import Opportunity, OpportunityQuerySet

Quarter = tuple[int, int]


class StoredQuarter(models.Model):
    """A finished quarter whose entering pipeline is stored (its rows may be none). Known
    by its first and last moments, not by its name alone: a changed fiscal year start or
    time zone makes other quarters of the same names, stored afresh."""

    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"))
    quarter = models.PositiveSmallIntegerField(_("quarter"))
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    stored_at = models.DateTimeField(_("stored"), default=timezone.now)

    class Meta:
        verbose_name = _("stored quarter")
        verbose_name_plural = _("stored quarters")
        constraints = [models.UniqueConstraint(fields=["starts_at", "ends_at"],
                                               name="stored_quarter_once")]

    def __str__(self) -> str:
        return f"{self.fiscal_year}-Q{self.quarter}"


class EnteringOpportunity(models.Model):
    """An opportunity in a finished quarter's entering pipeline, as it stood that day."""

    # No constraint checks per row: the rows are copied from the opportunities by the
    # statement that writes them, and opportunities are never deleted (as SnapshotRow).
    stored_quarter = models.ForeignKey(StoredQuarter, verbose_name=_("quarter"),
                                       on_delete=models.CASCADE, related_name="entering",
                                       db_index=False, db_constraint=False)
    opportunity = models.ForeignKey(Opportunity, verbose_name=_("opportunity"),
                                    on_delete=models.PROTECT, related_name="+",
                                    db_index=False, db_constraint=False)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)

    class Meta:
        verbose_name = _("opportunity entering a quarter")
        verbose_name_plural = _("opportunities entering a quarter")
        constraints = [models.UniqueConstraint(fields=["stored_quarter", "opportunity"],
                                               name="entering_opportunity_once")]

    def __str__(self) -> str:
        return f"{self.stored_quarter_id}: {self.opportunity_id}"


def has_ended(year: int, quarter: int, now: datetime | None = None) -> bool:
    return fiscal_quarter_moments(year, quarter)[1] <= (now or timezone.now())


def stored_quarters(quarters: list[Quarter]) -> dict[Quarter, int]:
    """The finished ones of these quarters, each stored now unless it is already: their
    StoredQuarter ids. Two requests at once store a quarter once: the second's insert
    waits on the first's and then does nothing, and it reads what the first wrote."""
    finished = [quarter for quarter in quarters if has_ended(*quarter)]
    if not finished:
        return {}
    found = stored_ids(finished)
    missing = [quarter for quarter in finished if quarter not in found]
    if missing:
        store(missing)
        found = stored_ids(finished)
    return found


def stored_ids(quarters: list[Quarter]) -> dict[Quarter, int]:
    moments = {fiscal_quarter_moments(*quarter): quarter for quarter in quarters}
    wanted = models.Q()
    for start, end in moments:
        wanted |= models.Q(starts_at=start, ends_at=end)
    return {moments[start, end]: pk for pk, start, end in
            StoredQuarter.objects.filter(wanted).values_list("pk", "starts_at", "ends_at")}


def as_stored(moment):
    """A moment as the ORM would write it: SQLite keeps text, and the ORM's lookups only
    find what it wrote itself."""
    return connection.ops.adapt_datetimefield_value(moment)


@transaction.atomic
def store(quarters: list[Quarter]) -> None:
    """Insert these quarters (INSERT … ON CONFLICT DO NOTHING) and, for each this call
    inserted, its entering opportunities in one INSERT … SELECT."""
    from forecasting.coverage import entering_opportunities

    quote = connection.ops.quote_name
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(quarters))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(StoredQuarter._meta.db_table)} (fiscal_year, quarter, "
            f"starts_at, ends_at, stored_at) VALUES {values} "
            "ON CONFLICT (starts_at, ends_at) DO NOTHING RETURNING id, fiscal_year, quarter",
            [value for year, quarter in quarters
             for value in (year, quarter, *map(as_stored, fiscal_quarter_moments(year, quarter)),
                           as_stored(now))])
        inserted = cursor.fetchall()
        for pk, year, quarter in inserted:
            select, params = (
                entering_opportunities(Opportunity.objects.all(), year, quarter)
                .filter(amount_then__isnull=False).order_by()
                .values_list(models.Value(pk, output_field=models.BigIntegerField()), "pk",
                             "amount_then", "currency_then")
                .query.sql_with_params())
            cursor.execute(
                f"INSERT INTO {quote(EnteringOpportunity._meta.db_table)} "
                f"(stored_quarter_id, opportunity_id, amount, currency) {select}", params)


def forget_stored_quarters() -> None:
    """Empty the stored quarters, to be stored again on the next request: for history
    written in the past by hand or by the demo's seed, which no stored quarter holds."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in (EnteringOpportunity, StoredQuarter):
            cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")


def stored_entering(opportunities: OpportunityQuerySet, stored: dict[Quarter, int]
                    ) -> dict[Quarter, list[tuple[str, object]]]:
    """Each stored quarter's entering pipeline among these opportunities: (currency,
    amount) sums, as coverage.converted takes them. One grouped query."""
    quarter_of = {pk: quarter for quarter, pk in stored.items()}
    sums: dict[Quarter, list] = {quarter: [] for quarter in stored}
    rows = EnteringOpportunity.objects.filter(stored_quarter__in=list(quarter_of))
    if opportunities.query.has_filters():  # else every opportunity: no join to make
        rows = rows.filter(opportunity__in=opportunities.order_by().values("pk"))
    rows = (rows.order_by().values_list("stored_quarter", "currency").annotate(Sum("amount")))
    for pk, currency, amount in rows:
        sums[quarter_of[pk]].append((currency, amount))
    return sums
