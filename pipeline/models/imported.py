"""Opportunities brought in from another CRM: the uploaded file kept as an import until it
is committed, and the one way an imported opportunity enters its stage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.bulk import reserve_ids
from crm.models import Role, User
from pipeline.models.choices import Via
from pipeline.process import DeadReason, Stage


@dataclass(frozen=True)
class ImportedOpportunity:
    """One clean row of an import, with its account and owner already found or made."""

    source_system: str
    source_id: str
    account_id: int
    owner_id: int
    name: str
    stage: Stage
    amount: Decimal
    currency: str
    expected_close_date: date
    type: str
    source: str
    next_step: str = ""
    champion_id: int | None = None


class Imported:
    """Mixed into Opportunity: entering a stage by import, the one exception to move_to."""

    @classmethod
    @transaction.atomic
    def enter_via_import(cls, rows: list[ImportedOpportunity], *, by: User | None,
                         now: datetime | None = None) -> int:
        """Create these opportunities in their mapped stage, each with one history row
        "via import" and no ticks: the gates were passed, or not, in the other CRM, and
        nothing here pretends they were passed here. How many were created.

        A won or lost deal entered Closed or Dead on its close date, so the forecast counts
        it in the quarter it was won; an open one entered its stage now, with the stage's
        deadline from now. Set-based: on PostgreSQL one COPY for the opportunities and one for
        their history, whatever the number of rows.
        """
        from pipeline.models.timeouts import StageTimeout

        if not rows:
            return 0
        now = now or timezone.now()
        deadlines: dict[Stage, datetime | None] = {}
        records = []
        for row in rows:
            finished = row.stage in (Stage.CLOSED, Stage.DEAD)
            entered = closing_moment(row.expected_close_date) if finished else now
            if row.stage not in deadlines:
                days = None if finished else StageTimeout.days_for(row.stage)
                deadlines[row.stage] = now + timedelta(days=days) if days else None
            records.append({
                "source_system": row.source_system, "source_id": row.source_id,
                "account_id": row.account_id, "owner_id": row.owner_id, "name": row.name,
                "stage": row.stage.value, "type": str(row.type), "source": str(row.source),
                "amount": row.amount, "amount_at_stage_entry": row.amount,
                "currency": row.currency, "expected_close_date": row.expected_close_date,
                "next_step": row.next_step, "stage_entered_at": entered,
                "stage_deadline": deadlines[row.stage],
                "dead_reason": DeadReason.OTHER.value if row.stage == Stage.DEAD else "",
                "created_at": min(entered, now), "changed_at": now,
                "changed_by_id": by.pk if by else None,
            })
        if connection.vendor == "postgresql":
            cls._copy_imported(records, by=by)
        else:
            cls._create_imported(records, by=by)
        return len(records)

    @classmethod
    def _copy_imported(cls, records: list[dict], *, by: User | None) -> None:
        """COPY the opportunities and their history rows in, with ids taken from the
        table's sequence first: a tenth of what a model instance per row costs, and no
        query to find the new rows again."""
        from pipeline.models.history import StageChange

        quote = connection.ops.quote_name
        table = cls._meta.db_table
        with connection.cursor() as cursor:
            ids = reserve_ids(cls, len(records))
            fields = [field for field in cls._meta.concrete_fields if not field.primary_key]
            defaults = {field.attname: field.get_default() for field in fields}
            columns = ", ".join(quote(field.column) for field in fields)
            with cursor.copy(f"COPY {quote(table)} (id, {columns}) FROM STDIN") as copy:
                for pk, record in zip(ids, records, strict=True):
                    copy.write_row([pk, *[plain(record.get(field.attname,
                                                           defaults[field.attname]))
                                          for field in fields]])
            reason = import_reason(records[0]["source_system"])
            with cursor.copy(
                    f"COPY {quote(StageChange._meta.db_table)} (opportunity_id, from_stage, "
                    "to_stage, changed_at, changed_by_id, via, reason, dead_reason, is_undo, "
                    "checklist) FROM STDIN") as copy:
                for pk, record in zip(ids, records, strict=True):
                    copy.write_row([pk, record["stage"], record["stage"], record["created_at"],
                                    by.pk if by else None, Via.IMPORT.value, reason,
                                    record["dead_reason"], False, "{}"])

    @classmethod
    def _create_imported(cls, records: list[dict], *, by: User | None) -> None:
        """The same with Django's bulk inserts, for databases without COPY."""
        from pipeline.models.history import StageChange

        created = cls.objects.bulk_create([cls(**record) for record in records])
        reason = import_reason(records[0]["source_system"])
        StageChange.objects.bulk_create(
            StageChange(opportunity_id=opportunity.pk, from_stage=opportunity.stage,
                        to_stage=opportunity.stage, changed_at=opportunity.created_at,
                        changed_by=by, via=Via.IMPORT, reason=reason,
                        dead_reason=opportunity.dead_reason)
            for opportunity in created)


def plain(value):
    """Enum members as their values, for COPY."""
    return value.value if isinstance(value, Enum) else value


def import_reason(source_system: str) -> str:
    system = Vendor(source_system).label if source_system in Vendor.values else source_system
    return gettext("Imported from %s") % system


def closing_moment(day: date) -> datetime:
    """Noon of the close day, in the company's time zone: the day stays the same whatever
    the zone the forecast reads it in."""
    return timezone.make_aware(datetime.combine(day, time(12)))


class Vendor(models.TextChoices):
    """The systems whose exports can be imported (their columns: pipeline/imports/)."""

    SALESFORCE = "salesforce", _("Salesforce (opportunity report)")
    HUBSPOT = "hubspot", _("HubSpot (deals)")
    PIPEDRIVE = "pipedrive", _("Pipedrive (deals)")


class ImportStatus(models.TextChoices):
    DRAFT = "draft", _("being mapped")
    QUEUED = "queued", _("waiting for the worker")
    DONE = "done", _("imported")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("never imported; file removed")


class ImportBatch(models.Model):
    """An uploaded file from another CRM: kept while its stages are mapped and its rows
    previewed, then committed once, in one transaction, by the worker."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"),
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    file_name = models.CharField(_("file"), max_length=200)
    content = models.BinaryField(_("content"))
    vendor = models.CharField(_("source system"), max_length=20, choices=Vendor.choices)
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner of rows without a known owner"),
        on_delete=models.PROTECT, related_name="+")
    stage_map = models.JSONField(_("stage mapping"), default=dict)
    status = models.CharField(_("status"), max_length=20, choices=ImportStatus.choices,
                              default=ImportStatus.DRAFT)
    token = models.UUIDField(default=uuid.uuid4, editable=False)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    already_there = models.PositiveIntegerField(_("already imported before"), default=0)
    refused = models.PositiveIntegerField(_("rows with errors"), default=0)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    failure = models.TextField(_("why it failed"), blank=True)

    # How long an uploaded file waits to be imported before it is removed.
    DRAFT_DAYS = 7

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.file_name

    @classmethod
    def visible_to(cls, user: User) -> models.QuerySet:
        """Each importer sees their own imports."""
        return cls.objects.filter(created_by=user)

    @staticmethod
    def may_import(user: User) -> bool:
        """Sales ops and managers import for others, reps their own deals; BDRs qualify
        new leads by hand (process.md, Roles)."""
        return user.is_superuser or user.is_sales_ops or user.is_manager or user.is_rep

    @staticmethod
    def owners_for(user: User) -> models.QuerySet:
        """Who may own what `user` imports: anyone selling for sales ops, the reps and
        BDRs of their teams for a manager, a rep themselves."""
        owners = User.objects.filter(is_active=True, groups__name__in=[Role.REP, Role.BDR])
        if user.is_superuser or user.is_sales_ops:
            return owners.distinct().order_by("first_name", "last_name", "username")
        if user.is_manager:
            return owners.filter(team_id__in=user.team_ids).distinct().order_by(
                "first_name", "last_name", "username")
        return owners.filter(pk=user.pk).distinct()

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.EXPIRED)

    @classmethod
    def forget_abandoned_files(cls, now: datetime) -> int:
        """Drop the files of drafts left unimported for DRAFT_DAYS, and of failed imports:
        their people are in no Contact row, where an erasure on request would reach them.
        A draft claimed for the worker meanwhile is left alone (the status is the
        claim). How many files were dropped."""
        stale = now - timedelta(days=cls.DRAFT_DAYS)
        expired = cls.objects.filter(status=ImportStatus.DRAFT, created_at__lt=stale).update(
            status=ImportStatus.EXPIRED, content=b"", finished_at=now)
        failed = cls.objects.filter(status=ImportStatus.FAILED).exclude(content=b"").update(
            content=b"")
        return expired + failed

    def queue(self) -> bool:
        """Claim the draft for the worker; False when it was already queued or done, so a
        second click commits nothing twice."""
        return bool(ImportBatch.objects.filter(pk=self.pk, status=ImportStatus.DRAFT)
                    .update(status=ImportStatus.QUEUED))
