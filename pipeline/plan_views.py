"""The close plan: the rep's page, and the customer's pages behind a share link.

The customer's pages need no account and show nothing of the CRM but the plan: their own
template, no navigation, no other opportunity, and the same clear page for every link that
does not open (unknown, tampered, expired or revoked).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.localized import day
from crm.models import Role, User
from pipeline.forms import ClosePlanForm, PlanStepForm, ShareLinkForm, VersionForm
from pipeline.models import ChangeRefused, Opportunity, ShareLink, StepStatus
from pipeline.opportunity_page import visible_opportunity


def step_form(opportunity: Opportunity, data=None, **kwargs) -> PlanStepForm:
    """Owners to choose from: the team's people, and the account's current contacts."""
    team = Q(team_id=opportunity.owner.team_id) if opportunity.owner.team_id else Q(pk=None)
    users = User.objects.filter(team | Q(pk=opportunity.owner_id), is_active=True,
                                groups__name__in=Role.values).distinct()
    contacts = opportunity.account.contacts.filter(archived_at__isnull=True)
    return PlanStepForm(data, users=users, contacts=contacts, **kwargs)


def plan_page(request, opportunity: Opportunity, *, status: int = 200, **forms):
    opportunity.reload()
    plan = opportunity.current_close_plan()
    today = timezone.localdate()
    return TemplateResponse(request, "pipeline/close_plan.html", {
        "opportunity": opportunity,
        "plan": plan,
        "steps": [{"step": step, "overdue": step.is_overdue(today),
                   "form": step_form(opportunity, prefix=f"step-{step.pk}", initial={
                       "title": step.title, "due_date": step.due_date, "status": step.status,
                       "owner": f"user:{step.owner_user_id}" if step.owner_user_id
                       else f"contact:{step.owner_contact_id}"})}
                  for step in (plan.current_steps() if plan else [])],
        "can_edit": opportunity.can_edit(request.user),
        "plan_form": forms.get("plan_form") or ClosePlanForm(initial={
            "target_signature_date": plan.target_signature_date if plan else None}),
        "new_step_form": forms.get("new_step_form") or step_form(opportunity),
        "link_form": forms.get("link_form") or ShareLinkForm(account=opportunity.account),
        "links": plan.links.select_related("contact") if plan else [],
        "events": plan.events.select_related("by_user", "by_contact").order_by("-at", "-pk")
        if plan else [],
        "refusal": forms.get("refusal"),
    }, status=forms["refusal"].status_code if forms.get("refusal") else status)


def back_to_plan(pk: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("pipeline:close_plan", args=[pk]))


def plan_change(request, pk: int, done: str, change):
    """A change posted from the plan's page with nothing but its version: made, then back
    to the plan; refused, the page again with why."""
    opportunity = visible_opportunity(request, pk)
    try:
        change(opportunity)
    except ChangeRefused as refusal:
        return plan_page(request, opportunity, refusal=refusal)
    messages.success(request, done)
    return back_to_plan(pk)


@login_required
def close_plan(request, pk: int) -> TemplateResponse:
    """The plan with its steps, acceptances, share links and history; POST sets its
    target signature date (and makes the plan)."""
    opportunity = visible_opportunity(request, pk)
    if request.method != "POST":
        return plan_page(request, opportunity)
    form = ClosePlanForm(request.POST)
    if not form.is_valid():
        return plan_page(request, opportunity, plan_form=form, status=400)
    try:
        opportunity.save_close_plan(
            by=request.user, target_signature_date=form.cleaned_data["target_signature_date"],
            expected_version=form.cleaned_data["version"])
    except ChangeRefused as refusal:
        return plan_page(request, opportunity, plan_form=form, refusal=refusal)
    messages.success(request, _("Close plan saved."))
    return back_to_plan(pk)


@require_POST
@login_required
def plan_step_add(request, pk: int):
    opportunity = visible_opportunity(request, pk)
    form = step_form(opportunity, request.POST)
    if not form.is_valid():
        return plan_page(request, opportunity, new_step_form=form, status=400)
    data = form.cleaned_data
    try:
        opportunity.add_plan_step(
            by=request.user, title=data["title"], due_date=data["due_date"],
            expected_version=data["version"], material=data["material"] is not False,
            **form.owners())
    except ChangeRefused as refusal:
        return plan_page(request, opportunity, new_step_form=form, refusal=refusal)
    messages.success(request, _("Step added."))
    return back_to_plan(pk)


@require_POST
@login_required
def plan_step_change(request, pk: int, step: int):
    opportunity = visible_opportunity(request, pk)
    form = step_form(opportunity, request.POST, prefix=f"step-{step}")
    if not form.is_valid():
        return plan_page(request, opportunity, status=400, refusal=ChangeRefused(
            "; ".join(str(error) for errors in form.errors.values() for error in errors)))
    data = form.cleaned_data
    try:
        opportunity.change_plan_step(
            step, by=request.user, material=data["material"],
            expected_version=data["version"], title=data["title"],
            due_date=data["due_date"], status=StepStatus(data["status"]), **form.owners())
    except ChangeRefused as refusal:
        return plan_page(request, opportunity, refusal=refusal)
    messages.success(request, _("Step saved."))
    return back_to_plan(pk)


@require_POST
@login_required
def plan_step_remove(request, pk: int, step: int):
    return plan_change(request, pk, _("Step removed."), lambda opportunity: (
        opportunity.remove_plan_step(step, by=request.user,
                                     expected_version=VersionForm.posted(request))))


@require_POST
@login_required
def plan_accept(request, pk: int):
    return plan_change(request, pk, _("You accepted the close plan."), lambda opportunity: (
        opportunity.accept_close_plan(by=request.user,
                                      expected_version=VersionForm.posted(request))))


@require_POST
@login_required
def plan_link_create(request, pk: int):
    """A share link for one contact; its address is shown this once."""
    opportunity = visible_opportunity(request, pk)
    form = ShareLinkForm(request.POST, account=opportunity.account)
    if not form.is_valid():
        return plan_page(request, opportunity, link_form=form, status=400)
    try:
        link, token = opportunity.share_close_plan(
            form.cleaned_data["contact"], by=request.user, days=form.cleaned_data["days"])
    except ChangeRefused as refusal:
        return plan_page(request, opportunity, link_form=form, refusal=refusal)
    address = request.build_absolute_uri(reverse("pipeline:shared_plan", args=[token]))
    messages.success(request, _("Send this link to %(contact)s; it is shown only now and "
                                "works until %(until)s: %(address)s")
                     % {"contact": link.contact, "address": address,
                        "until": day(link.expires_at)})
    return back_to_plan(pk)


@require_POST
@login_required
def plan_link_revoke(request, pk: int, link: int):
    return plan_change(request, pk, _("The link no longer works."), lambda opportunity: (
        opportunity.revoke_plan_link(link, by=request.user)))


# --- the customer's side ---


def link_does_not_open(request) -> TemplateResponse:
    return TemplateResponse(request, "pipeline/shared_plan.html#closed", {}, status=404)


def shared_plan(request, token: str) -> TemplateResponse:
    """The plan as the customer's contact sees it: the steps, whose they are, and what
    they may do (tick their own, accept the plan under their name)."""
    link = ShareLink.opened(token)
    if link is None:
        return link_does_not_open(request)
    return shared_plan_page(request, link, token)


def shared_plan_page(request, link: ShareLink, token: str, *, refusal=None,
                     notice: str = ""):
    plan = link.plan
    today = timezone.localdate()
    return TemplateResponse(request, "pipeline/shared_plan.html", {
        "link": link,
        "link_token": token,
        "plan": plan,
        "company": plan.opportunity.account,
        "steps": [{"step": step, "overdue": step.is_overdue(today),
                   "mine": step.owner_contact_id == link.contact_id}
                  for step in plan.steps.filter(removed_at__isnull=True)
                  .select_related("owner_user", "owner_contact")],
        "refusal": refusal,
        "notice": notice,
    }, status=refusal.status_code if refusal else 200)


@require_POST
def shared_plan_step_done(request, token: str, step: int):
    link = ShareLink.opened(token)
    if link is None:
        return link_does_not_open(request)
    try:
        link.plan.tick_by_customer(step, link=link)
    except ChangeRefused as refusal:
        return shared_plan_page(request, link, token, refusal=refusal)
    return shared_plan_page(request, link, token, notice=_("Marked as done. Thank you."))


@require_POST
def shared_plan_accept(request, token: str):
    link = ShareLink.opened(token)
    if link is None:
        return link_does_not_open(request)
    try:
        link.plan.accept_by_customer(link=link)
    except ChangeRefused as refusal:
        return shared_plan_page(request, link, token, refusal=refusal)
    return shared_plan_page(request, link, token,
                            notice=_("You accepted the plan. Thank you."))
