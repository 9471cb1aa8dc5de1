"""The admin for opportunities, their checklists and history, and stage timeouts.

The admin is one more door into the model, not a way around it: opportunities are opened
with `Opportunity.start` and edited with `update_details`, the stage is never a form field,
and the rows that record what happened are view-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

import pipeline.contact_admin  # noqa: F401  (registers Contact's admin with the erasure)
from crm.admin import (
    HistoryAdmin,
    ProgressionModelAdmin,
    ProgressionUserAdmin,
    SalesOpsConfigurationAdmin,
)
from crm.models import Account, ExchangeRate, Role, User
from pipeline.models import (
    Activity,
    ActivityRule,
    ChangeRefused,
    ClosePlan,
    ClosePlanEvent,
    ClosePlanStep,
    CommitteeMember,
    CriterionTick,
    DeadlineExtension,
    DeadPoolClaim,
    FieldChange,
    HandoffTask,
    ImportBatch,
    Offer,
    OfferLine,
    Opportunity,
    PurchaseOrder,
    ShareLink,
    StageChange,
    StageTimeout,
    Via,
)


class RefusalsAsMessagesMixin:
    """A change the model refuses becomes an error message on the same page, not a 500.

    The admin's form view runs in one transaction, so the refusal has rolled everything
    back by the time the message is shown.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ChangeRefused as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())



def of_visible_opportunities(queryset, user: User):
    """Rows about opportunities the user may see, by the same rule as the opportunities."""
    return queryset.filter(opportunity__in=Opportunity.objects.visible_to(user))


class OpportunityAdminForm(forms.ModelForm):
    """The editable details; the version the page was loaded at guards against lost edits."""

    loaded_version = forms.IntegerField(
        label=_("version when loaded"), widget=forms.HiddenInput, required=False
    )
    # Set per request by OpportunityAdmin.get_form, whose form class is built per request.
    acting_user: User | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version
        if "account" in self.fields:
            self.fields["account"].queryset = Account.objects.filter(archived_at__isnull=True)

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if currency != self.instance.currency:  # a deal kept from before may keep its own
            ExchangeRate.validate_usable(currency)
        return currency

    def clean(self):
        cleaned_data = super().clean()
        owner = cleaned_data.get("owner")
        adding = self.instance._state.adding
        if owner is None or not (adding or "owner" in self.changed_data):
            return cleaned_data
        if not owner.is_active or not (owner.is_rep or owner.is_bdr):
            self.add_error("owner", gettext("Choose an active account executive or BDR."))
        elif adding and not Opportunity.may_be_opened(by=self.acting_user, owner=owner):
            self.add_error("owner", gettext(
                "You may open opportunities for yourself, or for your team as its manager."
            ))
        elif not adding and not self.instance.can_change_owner(self.acting_user):
            self.add_error("owner", gettext("Only a manager reassigns an opportunity."))
        elif not adding and not self.instance.may_be_handed_to(owner, by=self.acting_user):
            self.add_error("owner", gettext(
                "Choose an active account executive of a team you lead."))
        return cleaned_data


@admin.register(Opportunity)
class OpportunityAdmin(RefusalsAsMessagesMixin, ProgressionModelAdmin):
    form = OpportunityAdminForm
    list_display = ("name", "account", "owner", "stage", "amount", "currency",
                    "expected_close_date", "changed_at")
    list_filter = ("stage", "type", "source", "owner__team")
    list_select_related = ("account", "owner")
    search_fields = ("name", "account__name", "owner__username", "owner__last_name")
    autocomplete_fields = ("account", "owner")
    ordering = ("-changed_at",)

    DETAILS = ("account", "name", "type", "source", "owner", "amount", "currency",
               "expected_close_date", "next_step", "next_step_date")
    # Where the opportunity stands: only move_to changes these.
    STANDING = ("stage", "probability", "forecast_category", "version", "stage_entered_at",
                "stage_deadline", "amount_at_stage_entry", "changed_by", "changed_at")
    CHECKLIST = ("champion", "champion_confirmed_at", "champion_confirmed_by",
                 "dead_reason", "dead_note", "created_at", "history")

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def has_add_permission(self, request) -> bool:
        return request.user.may_open_opportunities

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return obj.can_edit(request.user)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.DETAILS})]
        details = self.DETAILS
        if self.has_change_permission(request, obj):
            details = (*details, "loaded_version")
        return [
            (None, {"fields": details}),
            (_("Where it stands"), {"fields": self.STANDING}),
            (_("Checklist and history"), {"fields": self.CHECKLIST}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("account", *self.STANDING, *self.CHECKLIST)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.acting_user = request.user
        return form

    @admin.display(description=_("probability"))
    def probability(self, opportunity: Opportunity) -> str:
        return f"{opportunity.probability} %"

    @admin.display(description=_("forecast category"))
    def forecast_category(self, opportunity: Opportunity) -> str:
        return opportunity.forecast_category.label

    @admin.display(description=_("history"))
    def history(self, opportunity: Opportunity) -> str:
        query = f"?opportunity__id__exact={opportunity.pk}"
        return format_html(
            '<a href="{}{}">{}</a> · <a href="{}{}">{}</a> · <a href="{}{}">{}</a>'
            ' · <a href="{}{}">{}</a>',
            reverse("admin:pipeline_stagechange_changelist"), query, gettext("Stage changes"),
            reverse("admin:pipeline_fieldchange_changelist"), query, gettext("Field changes"),
            reverse("admin:pipeline_criteriontick_changelist"), query, gettext("Ticks"),
            reverse("admin:pipeline_deadlineextension_changelist"), query,
            gettext("Deadline extensions"),
        )

    def save_model(self, request, obj, form, change) -> None:
        """Through the model: start a new one, or update_details with what was changed."""
        if not change:
            started = Opportunity.start(
                by=request.user,
                **{name: form.cleaned_data[name] for name in self.DETAILS},
            )
            obj.pk = started.pk
            obj.refresh_from_db()
            obj._state.adding = False
            return
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in Opportunity.EDITABLE_FIELDS
        }
        if changes:
            obj.update_details(
                by=request.user, via=Via.ADMIN,
                expected_version=form.cleaned_data.get("loaded_version"), **changes,
            )


class OpportunityHistoryAdmin(HistoryAdmin):
    """View-only rows about opportunities, limited to the opportunities the user sees."""

    def get_queryset(self, request):
        return of_visible_opportunities(super().get_queryset(request), request.user)


@admin.register(StageChange)
class StageChangeAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "from_stage", "to_stage", "changed_at", "changed_by", "via",
                    "is_undo")
    list_filter = ("to_stage", "from_stage", "via", "is_undo")
    list_select_related = ("opportunity", "changed_by")
    search_fields = ("opportunity__name", "reason")
    date_hierarchy = "changed_at"


@admin.register(FieldChange)
class FieldChangeAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "field", "old_value", "new_value", "changed_at",
                    "changed_by", "via")
    list_filter = ("field", "via")
    list_select_related = ("opportunity", "changed_by")
    search_fields = ("opportunity__name", "old_value", "new_value")
    date_hierarchy = "changed_at"


class RevokedListFilter(admin.SimpleListFilter):
    title = _("counts")
    parameter_name = "counting"

    def lookups(self, request, model_admin):
        return [("yes", gettext("Counting")), ("no", gettext("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(CriterionTick)
class CriterionTickAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "criterion", "state", "ticked_by", "ticked_at",
                    "revoked_at")
    list_filter = (RevokedListFilter, "state", "criterion")
    list_select_related = ("opportunity", "ticked_by")
    search_fields = ("opportunity__name", "note")


@admin.register(CommitteeMember)
class CommitteeMemberAdmin(OpportunityHistoryAdmin):
    """View-only too: the committee changes through the opportunity (add_committee_member,
    record_preferred_vendor, remove_committee_member), which lock it and bump its version."""

    list_display = ("contact", "opportunity", "added_at", "confirmed_on", "removed_at")
    list_filter = (("removed_at", admin.EmptyFieldListFilter),
                   ("confirmed_on", admin.EmptyFieldListFilter))
    list_select_related = ("contact", "opportunity")
    search_fields = ("opportunity__name", "contact__last_name", "contact__first_name")


@admin.register(DeadlineExtension)
class DeadlineExtensionAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "stage", "kind", "days", "previous_deadline", "new_deadline",
                    "granted_by", "granted_at")
    list_filter = ("stage", "kind")
    list_select_related = ("opportunity", "granted_by")
    search_fields = ("opportunity__name", "reason")


@admin.register(DeadPoolClaim)
class DeadPoolClaimAdmin(OpportunityHistoryAdmin):
    """View-only: BDRs claim and release on the dead pool's page (claim, release_claim),
    which lock the opportunity so one claim holds at a time."""

    list_display = ("opportunity", "claimed_by", "claimed_at", "released_at", "released_by")
    list_filter = (("released_at", admin.EmptyFieldListFilter),)
    list_select_related = ("opportunity", "claimed_by", "released_by")
    search_fields = ("opportunity__name", "claimed_by__username", "claimed_by__last_name")


@admin.register(StageTimeout)
class StageTimeoutAdmin(SalesOpsConfigurationAdmin):
    list_display = ("stage", "days", "updated_at", "updated_by")
    list_select_related = ("updated_by",)


@admin.register(ActivityRule)
class ActivityRuleAdmin(SalesOpsConfigurationAdmin):
    """The one activity rule: sales ops change its numbers; a second row has no meaning."""

    list_display = ("__str__", "extension_days", "updated_at", "updated_by")
    list_select_related = ("updated_by",)

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not ActivityRule.objects.exists()


@admin.register(Activity)
class ActivityAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "kind", "status", "at", "subject", "logged_by")
    list_filter = ("kind", "status")
    list_select_related = ("opportunity", "logged_by")
    search_fields = ("opportunity__name", "subject")
    date_hierarchy = "at"



# --- offers, purchase orders and hand-offs: changed through the opportunity, read here ---


class OfferLineInline(admin.TabularInline):
    model = OfferLine
    fields = ("kind", "description", "quantity", "list_price", "discount_percent", "added_at",
              "removed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Offer)
class OfferAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "service_start", "service_end", "terms", "agreed_at")
    list_filter = (("agreed_at", admin.EmptyFieldListFilter), "terms")
    list_select_related = ("opportunity",)
    search_fields = ("opportunity__name",)
    inlines = [OfferLineInline]


@admin.register(OfferLine)
class OfferLineAdmin(ProgressionModelAdmin):
    list_display = ("description", "offer", "kind", "quantity", "list_price",
                    "discount_percent", "removed_at")
    list_select_related = ("offer__opportunity",)
    search_fields = ("description", "offer__opportunity__name")

    def get_queryset(self, request):
        visible = Opportunity.objects.visible_to(request.user)
        return super().get_queryset(request).filter(offer__opportunity__in=visible)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(OpportunityHistoryAdmin):
    list_display = ("number", "opportunity", "amount", "currency", "recorded_at", "outcome",
                    "reviewed_by")
    list_filter = ("outcome", "terms", "document_type")
    list_select_related = ("opportunity", "reviewed_by")
    search_fields = ("number", "opportunity__name")
    exclude = ("document",)  # served only through the app's view, which checks who asks
    date_hierarchy = "recorded_at"


@admin.register(HandoffTask)
class HandoffTaskAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "kind", "assigned_to", "created_at", "done_at", "done_by")
    list_filter = ("kind", ("done_at", admin.EmptyFieldListFilter))
    list_select_related = ("opportunity", "assigned_to", "done_by")
    search_fields = ("opportunity__name",)


# --- close plans: changed by the rep and the customer's contact in the app, read here ---


@admin.register(ClosePlan)
class ClosePlanAdmin(OpportunityHistoryAdmin):
    list_display = ("opportunity", "target_signature_date", "rep_accepted_at",
                    "customer_accepted_at")
    list_select_related = ("opportunity",)
    search_fields = ("opportunity__name",)


class PlanRowAdmin(ProgressionModelAdmin):
    """View-only rows of a close plan, of the opportunities the user may see."""

    def get_queryset(self, request):
        visible = Opportunity.objects.visible_to(request.user)
        return super().get_queryset(request).filter(plan__opportunity__in=visible)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ClosePlanStep)
class ClosePlanStepAdmin(PlanRowAdmin):
    list_display = ("title", "plan", "owner_user", "owner_contact", "due_date", "status")
    list_filter = ("status",)
    list_select_related = ("plan__opportunity", "owner_user", "owner_contact")
    search_fields = ("title", "plan__opportunity__name")


@admin.register(ShareLink)
class ShareLinkAdmin(PlanRowAdmin):
    list_display = ("contact", "plan", "created_at", "expires_at", "revoked_at",
                    "last_used_at")
    list_select_related = ("contact", "plan__opportunity")
    exclude = ("token_hash",)


@admin.register(ClosePlanEvent)
class ClosePlanEventAdmin(PlanRowAdmin):
    list_display = ("plan", "kind", "at", "by_user", "by_contact", "via_link")
    list_filter = ("kind",)
    list_select_related = ("plan__opportunity", "by_user", "by_contact")


# --- reassigning a leaving person's opportunities: an action on crm's user admin ---


class ReassignForm(forms.Form):
    """The intermediate page of the bulk reassignment: who takes over."""

    new_owner = forms.ModelChoiceField(
        label=_("New owner"),
        queryset=User.objects.none(),
        help_text=_("An active account executive; they are notified of each opportunity."),
    )

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].queryset = candidates


def may_reassign_from(actor: User, leaving: User) -> bool:
    """Superusers, and the manager of the leaving person's team."""
    return actor.is_superuser or (actor.is_manager and leaving.team_id in actor.team_ids)


admin.site.unregister(User)


@admin.register(User)
class UserAdminWithReassignment(ProgressionUserAdmin):
    """crm's user admin, with the bulk reassignment of open opportunities (crm never
    imports the other apps, so the action lives here)."""

    actions = ["reassign_open_opportunities"]

    def has_reassign_permission(self, request) -> bool:
        return request.user.is_superuser or request.user.is_manager

    @admin.action(description=_("Reassign open opportunities…"), permissions=["reassign"])
    def reassign_open_opportunities(self, request, queryset):
        """Hand every open opportunity of the selected people to one active rep."""
        leaving = list(queryset.select_related("team"))
        not_theirs = [user for user in leaving if not may_reassign_from(request.user, user)]
        if not_theirs:
            self.message_user(
                request,
                gettext("Only a superuser or their team's manager reassigns the "
                        "opportunities of %s. Nothing was reassigned.")
                % ", ".join(str(user) for user in not_theirs),
                messages.ERROR,
            )
            return None
        opportunities = (
            Opportunity.objects.visible_to(request.user).open()
            .filter(owner__in=leaving).select_related("owner").order_by("pk")
        )
        form = ReassignForm(
            request.POST if "apply" in request.POST else None,
            candidates=self._new_owner_candidates(request.user, leaving),
        )
        if form.is_valid():
            self._reassign(request, list(opportunities), form.cleaned_data["new_owner"])
            return None
        open_counts = dict(
            opportunities.order_by().values_list("owner").annotate(total=Count("*"))
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Reassign open opportunities"),
            "opts": self.opts,
            "form": form,
            "leaving": [(user, open_counts.get(user.pk, 0)) for user in leaving],
            "selected_pks": [user.pk for user in leaving],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "reassign_open_opportunities",
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/crm/reassign.html", context)

    @staticmethod
    def _new_owner_candidates(actor: User, leaving: list[User]):
        candidates = User.objects.filter(is_active=True, groups__name=Role.REP).exclude(
            pk__in=[user.pk for user in leaving]
        )
        if not actor.is_superuser:
            candidates = candidates.filter(team_id__in=actor.team_ids)
        return candidates.order_by("last_name", "first_name", "username")

    def _reassign(self, request, opportunities: list[Opportunity], new_owner: User) -> None:
        """All or nothing: each move writes its FieldChange row, notification and log entry."""
        try:
            with transaction.atomic():
                for opportunity in opportunities:
                    previous_owner = opportunity.owner
                    opportunity.update_details(owner=new_owner, by=request.user, via=Via.ADMIN)
                    self.log_change(
                        request, opportunity,
                        gettext("Reassigned from %(old)s to %(new)s.")
                        % {"old": previous_owner, "new": new_owner},
                    )
        except ChangeRefused as refusal:
            self.message_user(
                request, gettext("Nothing was reassigned: %s") % refusal.message,
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            ngettext("%(count)d open opportunity now belongs to %(owner)s.",
                     "%(count)d open opportunities now belong to %(owner)s.",
                     len(opportunities))
            % {"count": len(opportunities), "owner": new_owner},
            messages.SUCCESS,
        )


@admin.register(ImportBatch)
class ImportBatchAdmin(HistoryAdmin):
    """Imports from other CRMs, for the record; the uploaded file itself is not shown."""

    list_display = ("file_name", "vendor", "created_by", "created_at", "status", "imported",
                    "already_there", "refused")
    list_filter = ("vendor", "status")
    list_select_related = ("created_by",)
    search_fields = ("file_name",)
    date_hierarchy = "created_at"
    exclude = ("content",)
