"""The demo's weekly snapshots, rebuilt from the change history.

The demo's history is back-filled, so beat was never there to take its snapshots. Each is
rebuilt as of its slot from the change history (forecasting/coverage.py `as_of`), in one
`INSERT … SELECT` per week: the rows are what the history says stood open at that
moment, not today's figures under an old date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import Case, F, OuterRef, Subquery, Value, When

from crm.models import ExchangeRate, company_currency
from forecasting.coverage import as_of
from forecasting.snapshots import ROW_COLUMNS, Snapshot, SnapshotRow
from pipeline.models import Opportunity
from pipeline.process import ForecastCategory, Stage, category_stages


def weekly_slots(now: datetime, weeks: int) -> list[datetime]:
    """The weekly slots of this week and the `weeks - 1` before it, oldest first."""
    this_week = Snapshot.week_slot(now)
    return [this_week - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def rebuild_snapshot(slot: datetime) -> Snapshot | None:
    """The snapshot of this slot as the history says the pipeline stood then; None if the
    slot has one already."""
    if Snapshot.objects.filter(slot=slot).exists():
        return None
    with transaction.atomic():
        snapshot = Snapshot.objects.create(slot=slot, taken_at=slot)
        select, params = rows_as_of(slot, snapshot.pk)
        columns = ", ".join(connection.ops.quote_name(column) for column in ROW_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {connection.ops.quote_name(SnapshotRow._meta.db_table)}"
                           f" ({columns}) {select}", params)
            snapshot.rows = cursor.rowcount
        Snapshot.objects.filter(pk=snapshot.pk).update(rows=snapshot.rows)
    return snapshot


def rows_as_of(moment: datetime, snapshot_id: int) -> tuple[str, tuple]:
    """The SELECT of ROW_COLUMNS for the opportunities open at `moment`, as they were."""
    rate = (ExchangeRate.objects.filter(currency=OuterRef("currency_then"))
            .order_by().values("rate")[:1])
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    rows = (as_of(Opportunity.objects.filter(created_at__lt=moment), moment)
            .exclude(stage_then__in=[Stage.CLOSED, Stage.DEAD])
            .order_by().values(
                row_snapshot=Value(snapshot_id, output_field=models.IntegerField()),
                row_opportunity=F("pk"),
                row_owner=F("owner_id"),
                row_stage=F("stage_then"),
                row_category=Case(*(When(stage_then__in=category_stages(category),
                                         then=Value(category.value))
                                    for category in ForecastCategory),
                                  output_field=models.CharField()),
                row_amount=F("amount_then"),
                row_currency=F("currency_then"),
                row_amount_company=Case(
                    When(currency_then=company_currency(), then=F("amount_then")),
                    default=F("amount_then") * Subquery(rate), output_field=amount),
                row_close=F("close_date_then"),
            ))
    return rows.query.sql_with_params()
