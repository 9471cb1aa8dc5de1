"""The admin for people, teams, accounts, money and the notification outbox.

Roles are Django groups without model permissions: what a role may do is decided by the
models' own helpers, and every admin here asks them. Nothing is hard-deleted: accounts and
contacts are archived, history rows are view-only, and no admin offers a delete action.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.models import (
    Account,
    Contact,
    ContactErasure,
    ExchangeRate,
    Notification,
    Role,
    Team,
    User,
)
from crm.tokens import ApiToken

admin.site.site_header = _("Progression administration")
admin.site.site_title = _("Progression")
admin.site.index_title = _("Administration")
# Rows are archived, never deleted; no admin may offer Django's bulk delete.
admin.site.disable_action("delete_selected")


def holds_a_role(user) -> bool:
    """Superusers and anyone with one of the four roles may look around the admin."""
    if not user.is_active:
        return False
    return user.is_superuser or bool(getattr(user, "roles", ()))


def may_configure_the_process(user) -> bool:
    """Stage timeouts and exchange rates are sales ops' to keep (process.md, Roles)."""
    return user.is_active and (user.is_superuser or user.is_sales_ops)


class ProgressionModelAdmin(admin.ModelAdmin):
    """Access by role instead of per-model permissions; changes for superusers by default.

    Subclasses widen add and change where a role may make them; deleting is never allowed.
    """

    def has_module_permission(self, request) -> bool:
        return holds_a_role(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return holds_a_role(request.user)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changelist(self, request, **kwargs):
        return TolerantChangeList

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.get_autocomplete_fields(request):
            kwargs.setdefault("widget", TolerantAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TolerantChangeList(ChangeList):
    """Django's list, which says "incorrect lookup" for every filter it cannot apply.

    A date drill-down beyond the calendar ("?changed_at__year=9999", or a year too large
    for a date) raised past Django's own check and failed with a server error.
    """

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error


class TolerantAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete widget, which shows a form sent back with an error.

    It looks the submitted value up to show it, and a value that is no id ("?account=abc",
    or a tampered form) made the page fail instead of showing the field's error.
    """

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [one for one in value if self.is_an_id(one)], attr)

    def is_an_id(self, value) -> bool:
        try:
            self.field.target_field.to_python(value)
        except ValidationError:
            return False
        return True


class HistoryAdmin(ProgressionModelAdmin):
    """Rows that record what happened: they can be read, never added, changed or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SalesOpsConfigurationAdmin(ProgressionModelAdmin):
    """Settings sales ops keep: everyone with a role reads them, sales ops change them."""

    readonly_fields = ("updated_at", "updated_by")

    def has_add_permission(self, request) -> bool:
        return may_configure_the_process(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return may_configure_the_process(request.user)

    def save_model(self, request, obj, form, change) -> None:
        obj.updated_by = request.user
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


class ArchiveActionsMixin:
    """Archive and restore instead of deleting; each archived row is logged."""

    actions = ["archive_selected", "restore_selected"]

    @admin.action(description=_("Archive selected %(verbose_name_plural)s"),
                  permissions=["change"])
    def archive_selected(self, request, queryset) -> None:
        archived = self._set_archived(request, queryset.filter(archived_at__isnull=True),
                                      timezone.now(), gettext("Archived."))
        self.message_user(request, gettext("%(count)d archived.") % {"count": archived},
                          messages.SUCCESS)

    @admin.action(description=_("Restore selected %(verbose_name_plural)s"),
                  permissions=["change"])
    def restore_selected(self, request, queryset) -> None:
        restored = self._set_archived(request, queryset.filter(archived_at__isnull=False),
                                      None, gettext("Restored from the archive."))
        self.message_user(request, gettext("%(count)d restored.") % {"count": restored},
                          messages.SUCCESS)

    def _set_archived(self, request, queryset, archived_at, message: str) -> int:
        rows = list(queryset)
        with transaction.atomic():
            for row in rows:
                row.archived_at = archived_at
                row.save(update_fields=["archived_at"])
                self.log_change(request, row, message)
        return len(rows)


# --- people and teams: changed by superusers only ---


@admin.register(Team)
class TeamAdmin(ProgressionModelAdmin):
    list_display = ("name", "manager", "member_count")
    list_select_related = ("manager",)
    search_fields = ("name",)
    autocomplete_fields = ("manager",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total


@admin.register(User)
class ProgressionUserAdmin(ProgressionModelAdmin, UserAdmin):
    list_display = ("username", "full_name", "email", "team", "role_names", "is_active",
                    "is_staff")
    list_filter = ("groups", "team", "is_active", "is_staff", "is_superuser")
    list_select_related = ("team",)
    autocomplete_fields = ("team",)
    fieldsets = (
        *UserAdmin.fieldsets,
        (_("Team"), {"fields": ("team",)}),
    )
    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("name"), ordering="last_name")
    def full_name(self, user: User) -> str:
        return user.get_full_name()

    @admin.display(description=_("roles"))
    def role_names(self, user: User) -> str:
        labels = [str(Role(group.name).label) for group in user.groups.all()
                  if group.name in Role.values]
        return ", ".join(sorted(labels))


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(ProgressionModelAdmin, GroupAdmin):
    """The four role groups come from a migration; the app's code relies on their names."""


# --- customers: anyone with a role keeps them; archived, never deleted ---


class ContactInline(admin.TabularInline):
    model = Contact
    fields = ("first_name", "last_name", "title", "email", "phone", "archived_at")
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        # An erased contact is never edited again, not even as a row of its account.
        return super().get_queryset(request).filter(erased_at__isnull=True)

    def has_view_permission(self, request, obj=None) -> bool:
        return holds_a_role(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return holds_a_role(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return holds_a_role(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ArchivedListFilter(admin.SimpleListFilter):
    title = _("archived")
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", gettext("Current")), ("yes", gettext("Archived"))]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(archived_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


@admin.register(Account)
class AccountAdmin(ArchiveActionsMixin, ProgressionModelAdmin):
    list_display = ("name", "industry", "website", "created_at", "archived_at")
    list_filter = (ArchivedListFilter, "industry")
    search_fields = ("name", "industry", "website")
    readonly_fields = ("created_at",)
    inlines = [ContactInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request) -> bool:
        return holds_a_role(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return holds_a_role(request.user)


@admin.register(Contact)
class ContactAdmin(ArchiveActionsMixin, ProgressionModelAdmin):
    list_display = ("last_name", "first_name", "account", "title", "email", "phone",
                    "archived_at", "erased_at")
    list_filter = (ArchivedListFilter,)
    list_select_related = ("account",)
    search_fields = ("first_name", "last_name", "email", "account__name")
    autocomplete_fields = ("account",)
    readonly_fields = ("erased_at",)
    # The erasure action is added in pipeline/admin.py: an erasure also cleans the deals'
    # texts, which crm may not import.

    def has_add_permission(self, request) -> bool:
        return holds_a_role(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_erased:
            return False  # an erasure cannot be reversed by an edit
        return holds_a_role(request.user)

    @admin.action(description=_("Restore selected %(verbose_name_plural)s"),
                  permissions=["change"])
    def restore_selected(self, request, queryset) -> None:
        super().restore_selected(request, queryset.filter(erased_at__isnull=True))



@admin.register(ContactErasure)
class ContactErasureAdmin(HistoryAdmin):
    """The log of erasures: read by sales ops and superusers, never changed."""

    list_display = ("erased_at", "contact_id", "erased_by", "reason")
    list_select_related = ("erased_by",)
    fields = ("erased_at", "contact", "erased_by", "reason")

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.handles_privacy_requests

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.handles_privacy_requests


# --- money and the outbox ---


class ExchangeRateForm(forms.ModelForm):
    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()  # the model checks the code


@admin.register(ExchangeRate)
class ExchangeRateAdmin(SalesOpsConfigurationAdmin):
    form = ExchangeRateForm
    list_display = ("currency", "rate", "updated_at", "updated_by")
    list_select_related = ("updated_by",)
    search_fields = ("currency",)


@admin.register(Notification)
class NotificationAdmin(HistoryAdmin):
    """The outbox as sent: superusers see all of it, everyone else their own."""

    list_display = ("subject", "recipient", "created_at", "read_at", "emailed_at", "attempts")
    list_filter = (("read_at", admin.EmptyFieldListFilter),
                   ("emailed_at", admin.EmptyFieldListFilter))
    list_select_related = ("recipient",)
    search_fields = ("subject", "recipient__username", "recipient__last_name")
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(recipient=request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(HistoryAdmin):
    """Scripts' tokens, never their secrets: a superuser sees all and revokes any (someone
    leaving), everyone else sees their own. Made and revoked by their users on /account/tokens/."""

    list_display = ("name", "user", "hint", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "user__last_name")
    exclude = ("digest",)
    actions = ["revoke_selected"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user=request.user)

    def has_revoke_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.action(description=_("Revoke selected API tokens"), permissions=["revoke"])
    def revoke_selected(self, request, queryset) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, ngettext("%d token revoked.", "%d tokens revoked.", revoked)
                          % revoked, messages.SUCCESS)
