"""The opportunity page's views: open, show and edit an opportunity, move it, tick its
criteria, name its champion and committee, extend its deadline. Thin views: parse the
request, ask the model, render. Queries start from request.user."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.models import (
    Account,
    User,
)
from pipeline.board_views import (
    board_after_move,
    board_refusal,
    card,
    move_menu_context,
)
from pipeline.forms import (
    ContactChoiceForm,
    ExtensionForm,
    MoveForm,
    OpportunityForm,
    TickForm,
)
from pipeline.models import (
    ChangeForbidden,
    ChangeRefused,
    Conflict,
    Opportunity,
    Via,
    count_progress,
)
from pipeline.opportunity_page import (
    active_owners,
    detail_context,
    previous_stage,
    still_missing,
    via_of,
    visible_opportunity,
)
from pipeline.process import Stage


def refused(request, opportunity: Opportunity, refusal: ChangeRefused) -> TemplateResponse:
    """Show why a change was refused, with its 4xx status; nothing was changed."""
    if request.htmx:  # a checklist control: the checklist again, the refusal on top
        return checklist_response(request, opportunity, checklist_refusal=refusal,
                                  status=refusal.status_code)
    opportunity.reload()
    context = detail_context(request, opportunity, refusal=refusal)
    return TemplateResponse(request, "pipeline/opportunity_detail.html", context,
                            status=refusal.status_code)


def changed(request, opportunity: Opportunity, message: str):
    """After a change: the refreshed checklist for htmx, else back to the page."""
    if request.htmx:
        return checklist_response(request, opportunity, notice=message)
    messages.success(request, message)
    return HttpResponseRedirect(opportunity.get_absolute_url())


def checklist_response(request, opportunity: Opportunity, status: int = 200,
                       **extra) -> TemplateResponse:
    """The checklist, re-read; in the board's refusal dialog with the card behind it."""
    opportunity = visible_opportunity(request, opportunity.pk)
    retry_target = request.POST.get("retry_target", "")
    context = detail_context(
        request, opportunity, up_to=previous_stage(retry_target),
        retry_target=retry_target, filters=request.POST.get("filters", ""), **extra,
    )
    if not retry_target:
        return TemplateResponse(request, "pipeline/_checklist.html", context, status=status)
    context["still_missing"] = still_missing(context["checklists"])
    # The card behind the dialog shows the new progress and version too.
    [on_board] = count_progress([Opportunity.objects.cards().get(pk=opportunity.pk)])
    context["item"] = card(on_board, request.user, timezone.now())
    return TemplateResponse(request, "pipeline/board.html#dialog_checklist", context,
                            status=status)


def invalid_form(request, opportunity: Opportunity, form) -> TemplateResponse:
    errors = "; ".join(str(e) for errors in form.errors.values() for e in errors)
    return refused(request, opportunity, ChangeRefused(errors))


def posted_version(form) -> int | None:
    return form.cleaned_data.get("version")


@login_required
def opportunity_detail(request, pk: int) -> TemplateResponse:
    opportunity = visible_opportunity(request, pk)
    return TemplateResponse(request, "pipeline/opportunity_detail.html",
                            detail_context(request, opportunity))


@login_required
def opportunity_create(request) -> TemplateResponse:
    user = request.user
    if not user.may_open_opportunities:
        return TemplateResponse(request, "pipeline/opportunity_form.html", {
            "refusal": ChangeForbidden(_("Account executives, BDRs and managers open "
                                         "opportunities; your role does not.")),
        }, status=403)
    form = OpportunityForm(request.POST or None, initial={"account": request.GET.get("account")},
                           owners=owners_to_open_for(user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                account = data["account"] or Account.objects.create(
                    name=data["new_account_name"].strip()
                )
                details = {k: data[k] for k in ("next_step", "next_step_date")}
                opportunity = Opportunity.start(
                    account=account, owner=data.get("owner", user), by=user,
                    name=data["name"], type=data["type"], source=data["source"],
                    amount=data["amount"], currency=data["currency"],
                    expected_close_date=data["expected_close_date"], **details,
                )
        except ChangeRefused as refusal:
            return TemplateResponse(request, "pipeline/opportunity_form.html",
                                    {"form": form, "refusal": refusal},
                                    status=refusal.status_code)
        messages.success(request, _("Opportunity “%s” created.") % opportunity.name)
        return HttpResponseRedirect(opportunity.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "pipeline/opportunity_form.html", {"form": form},
                            status=status)


def owners_to_open_for(user: User):
    """Whom a manager (or a superuser) may open an opportunity for; None for reps and
    BDRs, who open their own."""
    if not (user.is_superuser or user.is_manager):
        return None
    return active_owners(user, every_team=user.is_superuser)


@login_required
def opportunity_edit(request, pk: int) -> TemplateResponse:
    opportunity = visible_opportunity(request, pk)
    form = OpportunityForm(request.POST or None, instance=Opportunity.objects.get(pk=pk))
    context = {"form": form, "opportunity": opportunity}
    if request.method == "POST":
        if not form.is_valid():
            return TemplateResponse(request, "pipeline/opportunity_form.html", context,
                                    status=400)
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in Opportunity.EDITABLE_FIELDS}
        try:
            opportunity.update_details(by=request.user, via=Via.PAGE,
                                       expected_version=posted_version(form), **changes)
        except ChangeRefused as refusal:
            if isinstance(refusal, Conflict):
                # The user has read who changed it: saving again is a deliberate overwrite.
                form.data = form.data.copy()
                form.data["version"] = refusal.opportunity.version
            context["refusal"] = refusal
            return TemplateResponse(request, "pipeline/opportunity_form.html", context,
                                    status=refusal.status_code)
        messages.success(request, _("Saved."))
        return HttpResponseRedirect(opportunity.get_absolute_url())
    if not opportunity.can_edit(request.user):
        context["refusal"] = ChangeRefused(_("You may view this opportunity but not change it."))
        return TemplateResponse(request, "pipeline/opportunity_form.html", context, status=403)
    return TemplateResponse(request, "pipeline/opportunity_form.html", context)


@login_required
def opportunity_move(request, pk: int) -> TemplateResponse:
    """GET: the "Move to…" menu for one card. POST: the move, from the board or the page."""
    opportunity = get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related("account", "owner"), pk=pk
    )
    if request.method != "POST":
        return TemplateResponse(request, "pipeline/board.html#move_menu",
                                move_menu_context(request, opportunity))
    form = MoveForm(request.POST)
    if not form.is_valid():
        return invalid_form(request, opportunity, form)
    data = form.cleaned_data
    source = Stage(opportunity.stage)
    target = Stage(data["stage"])
    try:
        opportunity.move_to(
            target, by=request.user, via=via_of(request),
            reason=_("undo") if data["undo"] else data["reason"],
            dead_reason=data["dead_reason"], expected_version=posted_version(form),
            account_executive=data["account_executive"], is_undo=data["undo"],
        )
    except ChangeRefused as refusal:
        if via_of(request) == Via.BOARD:
            return board_refusal(request, opportunity, refusal, source=source, target=target)
        return refused(request, opportunity, refusal)
    notice = _("“%(name)s” moved to %(stage)s.") % {
        "name": opportunity.name, "stage": Stage(opportunity.stage).label,
    }
    if via_of(request) == Via.BOARD:
        moved_forward = (target.order or 0) > (source.order or 0) and source != Stage.DEAD
        return board_after_move(
            request, opportunity, source=source, notice=notice,
            undo_to=source if moved_forward and not data["undo"] else None,
        )
    return changed(request, opportunity, notice)


@require_POST
@login_required
def criterion_tick(request, pk: int) -> TemplateResponse:
    opportunity = visible_opportunity(request, pk)
    form = TickForm(request.POST)
    if not form.is_valid():
        return invalid_form(request, opportunity, form)
    data = form.cleaned_data
    try:
        opportunity.tick(data["criterion"], by=request.user, note=data["note"],
                         not_required=data["not_required"],
                         expected_version=posted_version(form))
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal)
    return changed(request, opportunity, _("Criterion ticked."))


@require_POST
@login_required
def criterion_untick(request, pk: int) -> TemplateResponse:
    opportunity = visible_opportunity(request, pk)
    form = TickForm(request.POST)
    if not form.is_valid():
        return invalid_form(request, opportunity, form)
    try:
        opportunity.untick(form.cleaned_data["criterion"], by=request.user,
                           expected_version=posted_version(form))
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal)
    return changed(request, opportunity, _("Tick withdrawn."))


def contact_action(request, pk: int, action: str, message: str):
    """Champion and committee changes share their shape: pick or add a contact, then act."""
    opportunity = visible_opportunity(request, pk)
    form = ContactChoiceForm(request.POST, account=opportunity.account)
    if not form.is_valid():
        return invalid_form(request, opportunity, form)
    version = posted_version(form)
    try:
        if not opportunity.can_edit(request.user):
            raise ChangeForbidden(_("You may not change “%s”.") % opportunity.name)
        with transaction.atomic():
            contact = form.cleaned_data["contact"] or opportunity.account.add_contact(
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                title=form.cleaned_data["title"],
            )
            if action == "champion":
                opportunity.name_champion(contact, by=request.user, expected_version=version)
            elif action == "add":
                opportunity.add_committee_member(contact, by=request.user,
                                                 expected_version=version)
            elif action == "remove":
                opportunity.remove_committee_member(contact, by=request.user,
                                                    expected_version=version)
            else:
                opportunity.record_preferred_vendor(
                    contact, by=request.user, on=form.cleaned_data["confirmed_on"],
                    expected_version=version,
                )
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal)
    return changed(request, opportunity, message)


@require_POST
@login_required
def champion_name(request, pk: int):
    return contact_action(request, pk, "champion", _("Champion named."))


@require_POST
@login_required
def committee_member_add(request, pk: int):
    return contact_action(request, pk, "add", _("Committee member added."))


@require_POST
@login_required
def committee_member_remove(request, pk: int):
    return contact_action(request, pk, "remove", _("Committee member removed."))


@require_POST
@login_required
def committee_member_confirm(request, pk: int):
    return contact_action(request, pk, "confirm", _("Preferred-vendor confirmation recorded."))


@require_POST
@login_required
def opportunity_extend(request, pk: int):
    opportunity = visible_opportunity(request, pk)
    form = ExtensionForm(request.POST)
    if not form.is_valid():
        return invalid_form(request, opportunity, form)
    try:
        opportunity.grant_extension(form.cleaned_data["days"], by=request.user,
                                    reason=form.cleaned_data["reason"],
                                    expected_version=posted_version(form))
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal)
    return changed(request, opportunity, _("Deadline extended."))
