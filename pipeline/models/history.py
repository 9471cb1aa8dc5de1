"""What happened, append-only: stage changes and field changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pipeline.models.choices import Via
from pipeline.models.refusals import TEXT_LENGTH
from pipeline.process import (
    DeadReason,
    Stage,
)


def _as_text(value: Any) -> str:
    if isinstance(value, models.Model):
        return f"{value.pk}:{value}"
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def move_message(name: str, by: Any, source: str, target: str,
                 reason: str) -> tuple[str, str]:
    """The notification of a stage change, (subject, body), in the active language; `by`
    is who moved it, None for the system."""
    subject = gettext("%(name)s moved to %(stage)s") % {
        "name": name, "stage": Stage(target).label,
    }
    body = gettext("%(who)s moved “%(name)s” from %(from)s to %(to)s.") % {
        "who": by or gettext("The system"), "name": name,
        "from": Stage(source).label, "to": Stage(target).label,
    }
    if reason:  # why it moved back, died or was rejected
        body += "\n\n" + reason
    return subject, body


class StageChange(models.Model):
    """One stage change: who (or the system), when, from, to, via, why, and the checklist
    as it stood. Append-only; forecasting and conversion rates read their history here."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="stage_changes",
    )
    from_stage = models.CharField(_("from"), max_length=20, choices=Stage.choices)
    to_stage = models.CharField(_("to"), max_length=20, choices=Stage.choices)
    changed_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("who"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    via = models.CharField(_("via"), max_length=20, choices=Via.choices)
    reason = models.TextField(_("reason"), max_length=TEXT_LENGTH, blank=True)
    dead_reason = models.CharField(_("dead reason"), max_length=20,
                                   choices=DeadReason.choices, blank=True)
    handed_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("handed over to"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    is_undo = models.BooleanField(_("undo"), default=False)
    checklist = models.JSONField(_("checklist"), default=dict)

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["opportunity", "changed_at"], name="stage_change_opp")]
        constraints = [
            models.CheckConstraint(condition=Q(reason__length__lte=TEXT_LENGTH),
                                   name="stage_change_reason_length"),
        ]

    def __str__(self) -> str:
        return f"{self.get_from_stage_display()} → {self.get_to_stage_display()}"

    @property
    def who(self) -> str:
        return str(self.changed_by) if self.changed_by else gettext("system")


class FieldChange(models.Model):
    """A change of amount, currency, close date or owner: old value, new value, who, when."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="field_changes",
    )
    field = models.CharField(_("field"), max_length=30)
    old_value = models.CharField(_("old value"), max_length=300, blank=True)
    new_value = models.CharField(_("new value"), max_length=300, blank=True)
    changed_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("who"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )
    via = models.CharField(_("via"), max_length=20, choices=Via.choices)

    class Meta:
        verbose_name = _("field change")
        verbose_name_plural = _("field changes")
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["opportunity", "changed_at"], name="field_change_opp")]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} → {self.new_value}"

    @property
    def field_label(self) -> str:
        """The changed field as users know it, translated."""
        return self._meta.get_field("opportunity").related_model._meta.get_field(
            self.field).verbose_name

    def _shown(self, value: str) -> str:
        """The stored text as the reader writes amounts and dates ("25,922.00" in English,
        "25.922,00" in German); text that no longer parses is shown as stored."""
        # People are stored as "pk:name" so history keeps who it was even after renames.
        if self.field in ("owner", "champion") and ":" in value:
            return value.split(":", 1)[1]
        try:
            if self.field == "amount" and value:
                return formats.number_format(Decimal(value), 2, force_grouping=True)
            if self.field == "expected_close_date" and value:
                return formats.date_format(date.fromisoformat(value))
        except (ArithmeticError, ValueError):
            pass
        return value

    @property
    def old_shown(self) -> str:
        return self._shown(self.old_value)

    @property
    def new_shown(self) -> str:
        return self._shown(self.new_value)
