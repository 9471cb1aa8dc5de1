"""The admin for targets: a team's manager sets them, through Target.set."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from crm.admin import ProgressionModelAdmin
from crm.models import Team, User
from forecasting.models import Target
from pipeline.admin import RefusalsAsMessagesMixin


class TargetAdminForm(forms.ModelForm):
    # Set per request by TargetAdmin.get_form, whose form class is built per request.
    acting_user: User | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "team" in self.fields and not self.acting_user.is_superuser:
            # Only the teams whose targets this user may set can be chosen.
            self.fields["team"].queryset = Team.objects.filter(pk__in=self.acting_user.team_ids)


@admin.register(Target)
class TargetAdmin(RefusalsAsMessagesMixin, ProgressionModelAdmin):
    form = TargetAdminForm
    list_display = ("team", "fiscal_year", "quarter", "amount", "set_by", "set_at")
    list_filter = ("fiscal_year", "quarter", "team")
    list_select_related = ("team", "set_by")
    search_fields = ("team__name",)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser or request.user.is_manager

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return Target.may_be_set_by(request.user, obj.team)

    def get_readonly_fields(self, request, obj=None):
        # A target is one team's quarter: once set, only its amount changes.
        if obj is None:
            return ("set_at", "set_by")
        return ("team", "fiscal_year", "quarter", "set_at", "set_by")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.acting_user = request.user
        return form

    def save_model(self, request, obj, form, change) -> None:
        """Through Target.set, which checks the manager again and records who set it."""
        target = Target.set(
            team=obj.team, fiscal_year=obj.fiscal_year, quarter=obj.quarter,
            amount=obj.amount, by=request.user,
        )
        obj.pk = target.pk
        obj.set_by = target.set_by
        obj.set_at = target.set_at
        obj._state.adding = False
