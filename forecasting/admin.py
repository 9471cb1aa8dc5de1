"""The admin for quotas (a rep's manager sets them, through Quota.set), and read-only
records: the former team targets, forecast calls, snapshots and the stored entering
pipeline of finished quarters."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from crm.admin import ProgressionModelAdmin
from crm.models import User
from forecasting.models import (
    EnteringOpportunity,
    ForecastCall,
    Quota,
    Snapshot,
    SnapshotRow,
    StoredQuarter,
    Target,
)
from forecasting.scope import quota_reps
from pipeline.admin import RefusalsAsMessagesMixin


class QuotaAdminForm(forms.ModelForm):
    # Set per request by QuotaAdmin.get_form, whose form class is built per request.
    acting_user: User | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "rep" in self.fields:
            # Only the reps whose quotas this user sets can be chosen.
            self.fields["rep"].queryset = quota_reps(self.acting_user)


@admin.register(Quota)
class QuotaAdmin(RefusalsAsMessagesMixin, ProgressionModelAdmin):
    form = QuotaAdminForm
    list_display = ("rep", "team", "fiscal_year", "quarter", "amount", "set_by", "set_at")
    list_filter = ("fiscal_year", "quarter", "team")
    list_select_related = ("rep", "team", "set_by")
    search_fields = ("rep__username", "rep__first_name", "rep__last_name", "team__name")

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser or request.user.is_manager

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return Quota.may_be_set_by(request.user, obj.rep)

    def get_readonly_fields(self, request, obj=None):
        # A quota is one rep's quarter: once set, only its amount changes.
        if obj is None:
            return ("team", "set_at", "set_by")
        return ("rep", "team", "fiscal_year", "quarter", "set_at", "set_by")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.acting_user = request.user
        return form

    def save_model(self, request, obj, form, change) -> None:
        """Through Quota.set, which checks the manager again and records who set it."""
        quota = Quota.set(rep=obj.rep, fiscal_year=obj.fiscal_year, quarter=obj.quarter,
                          amount=obj.amount, by=request.user)
        obj.pk = quota.pk
        obj.team_id, obj.set_by, obj.set_at = quota.team_id, quota.set_by, quota.set_at
        obj._state.adding = False


class RecordAdmin(ProgressionModelAdmin):
    """What the app recorded, shown as it was: nobody adds, changes or deletes it here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Target)
class TargetAdmin(RecordAdmin):
    """Team targets from before quotas: kept as they were set, changed by nobody."""

    list_display = ("team", "fiscal_year", "quarter", "amount", "set_by", "set_at")
    list_filter = ("fiscal_year", "quarter", "team")
    list_select_related = ("team", "set_by")
    search_fields = ("team__name",)


@admin.register(ForecastCall)
class ForecastCallAdmin(RecordAdmin):
    """Calls are append-only: a later call or an adjustment stands beside an earlier one."""

    list_display = ("kind", "rep", "team", "fiscal_year", "quarter", "commit", "best_case",
                    "made_by", "made_at")
    list_filter = ("kind", "fiscal_year", "quarter", "team")
    list_select_related = ("rep", "team", "made_by")
    search_fields = ("rep__username", "rep__last_name", "team__name", "note")


@admin.register(Snapshot)
class SnapshotAdmin(RecordAdmin):
    list_display = ("slot", "taken_at", "taken_by", "rows")
    list_select_related = ("taken_by",)


@admin.register(SnapshotRow)
class SnapshotRowAdmin(RecordAdmin):
    list_display = ("snapshot", "opportunity", "stage", "category", "amount", "currency",
                    "expected_close_date")
    list_filter = ("stage", "category")
    list_select_related = ("snapshot", "opportunity")
    raw_id_fields = ("snapshot", "opportunity", "owner")


@admin.register(StoredQuarter)
class StoredQuarterAdmin(RecordAdmin):
    """Finished quarters whose entering pipeline the dashboard reads instead of rebuilding
    it from the history (forecasting/entering.py)."""

    list_display = ("__str__", "starts_at", "ends_at", "stored_at")
    list_filter = ("fiscal_year", "quarter")


@admin.register(EnteringOpportunity)
class EnteringOpportunityAdmin(RecordAdmin):
    list_display = ("stored_quarter", "opportunity", "amount", "currency")
    list_select_related = ("stored_quarter", "opportunity")
    raw_id_fields = ("stored_quarter", "opportunity")
