"""Weekly snapshots of the open pipeline, and what changed since one.

A snapshot copies every open opportunity's stage, forecast category, amount (also in the
company currency, at the rates in force) and close date in one `INSERT … SELECT`: the
database copies the rows, Python never sees them. Each snapshot has a slot (the week it
stands for, or the minute a manager asked for it); taking one for a slot that has one
already changes nothing, so beat may run the task as often as it likes.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import ExchangeRate, User, company_currency
from pipeline.models import Opportunity
from pipeline.process import ForecastCategory, Stage, category_stages


def category_case() -> Case:
    """SQL for an opportunity's forecast category, from the process table."""
    return Case(*(When(stage__in=category_stages(category), then=Value(category.value))
                  for category in ForecastCategory),
                output_field=models.CharField())


class Snapshot(models.Model):
    """One copy of the open pipeline; its rows are SnapshotRow."""

    slot = models.DateTimeField(
        _("taken for"), unique=True,
        help_text=_("The start of the week for the weekly snapshot, the minute for one "
                    "taken on demand: one snapshot per slot."))
    taken_at = models.DateTimeField(_("taken"), default=timezone.now)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("taken by"),
                                 on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+")
    rows = models.PositiveIntegerField(_("opportunities"), default=0)

    class Meta:
        verbose_name = _("snapshot")
        verbose_name_plural = _("snapshots")
        ordering = ["-taken_at", "-pk"]

    def __str__(self) -> str:
        return timezone.localtime(self.taken_at).strftime("%Y-%m-%d %H:%M")

    @staticmethod
    def week_slot(now: datetime | None = None) -> datetime:
        """Monday 00:00 (local time) of the week `now` falls in."""
        today = timezone.localdate(now or timezone.now())
        monday = today - timedelta(days=today.weekday())
        return datetime.combine(monday, time.min, tzinfo=timezone.get_current_timezone())

    @staticmethod
    def minute_slot(now: datetime | None = None) -> datetime:
        return (now or timezone.now()).replace(second=0, microsecond=0)

    @staticmethod
    def may_be_taken_by(user: User) -> bool:
        return user.is_superuser or user.is_manager

    @classmethod
    def take(cls, slot: datetime, *, by: User | None = None) -> tuple[Snapshot, bool]:
        """The snapshot of this slot, taken now unless there is one: (snapshot, taken).
        The snapshot and its rows are written in one transaction, so a snapshot is never
        seen half-written; two runs at once take it once (the slot is unique)."""
        existing = cls.objects.filter(slot=slot).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                snapshot = cls.objects.create(slot=slot, taken_by=by, taken_at=timezone.now())
                snapshot.rows = snapshot.copy_open_opportunities()
                cls.objects.filter(pk=snapshot.pk).update(rows=snapshot.rows)
        except IntegrityError:
            return cls.objects.get(slot=slot), False
        return snapshot, True

    def copy_open_opportunities(self) -> int:
        """One INSERT … SELECT of every open opportunity; how many rows it wrote."""
        select, params = snapshot_select(Opportunity.objects.open(), self.pk)
        columns = ", ".join(connection.ops.quote_name(column) for column in ROW_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {connection.ops.quote_name(SnapshotRow._meta.db_table)}"
                           f" ({columns}) {select}", params)
            return cursor.rowcount


class SnapshotRow(models.Model):
    """An open opportunity as it stood when a snapshot was taken."""

    # Neither indexes nor foreign-key constraints of their own: a snapshot's rows are
    # copied from the opportunities in the statement that writes them, and opportunities
    # and users are never deleted, while the three constraint checks per row took four
    # fifths of a snapshot's time (docs/benchmarks.md). Rows are read by snapshot and
    # opportunity, which the unique constraint's index serves.
    snapshot = models.ForeignKey(Snapshot, verbose_name=_("snapshot"),
                                 on_delete=models.CASCADE, related_name="opportunity_rows",
                                 db_index=False, db_constraint=False)
    opportunity = models.ForeignKey(Opportunity, verbose_name=_("opportunity"),
                                    on_delete=models.PROTECT, related_name="+",
                                    db_index=False, db_constraint=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"),
                              on_delete=models.PROTECT, related_name="+", db_index=False,
                              db_constraint=False)
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices)
    category = models.CharField(_("forecast category"), max_length=20,
                                choices=ForecastCategory.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    amount_company = models.DecimalField(
        _("amount in the company currency"), max_digits=16, decimal_places=2, null=True,
        help_text=_("Empty when there was no exchange rate for the currency."))
    expected_close_date = models.DateField(_("expected close date"))

    class Meta:
        verbose_name = _("snapshot row")
        verbose_name_plural = _("snapshot rows")
        constraints = [models.UniqueConstraint(fields=["snapshot", "opportunity"],
                                               name="snapshot_row_once")]

    def __str__(self) -> str:
        return f"{self.snapshot}: {self.opportunity_id}"


# The columns the INSERT … SELECT fills, in the order snapshot_select selects them.
ROW_COLUMNS = ("snapshot_id", "opportunity_id", "owner_id", "stage", "category", "amount",
               "currency", "amount_company", "expected_close_date")


def snapshot_select(opportunities, snapshot_id: int) -> tuple[str, tuple]:
    """The SELECT of a snapshot's rows (ROW_COLUMNS, in order) and its parameters."""
    rate = ExchangeRate.objects.filter(currency=OuterRef("currency")).order_by().values("rate")[:1]
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    rows = opportunities.order_by().values(
        row_snapshot=Value(snapshot_id, output_field=models.IntegerField()),
        row_opportunity=F("pk"),
        row_owner=F("owner_id"),
        row_stage=F("stage"),
        row_category=category_case(),
        row_amount=F("amount"),
        row_currency=F("currency"),
        row_amount_company=Case(
            When(currency=company_currency(), then=F("amount")),
            default=F("amount") * Subquery(rate), output_field=amount),
        row_close=F("expected_close_date"),
    )
    return rows.query.sql_with_params()
