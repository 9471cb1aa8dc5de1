"""Activities on the opportunity page: log a call, meeting or e-mail, mark a planned one
done or cancelled, and download a planned meeting for the calendar. htmx requests get
the activities section again; others go back to the page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from pipeline.calendar import meeting_calendar
from pipeline.forms import ActivityForm
from pipeline.models import Activity, ChangeRefused, Opportunity


def visible(request, pk: int) -> Opportunity:
    """The opportunity if this user may see it; 404 otherwise, so ids do not leak."""
    return get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related("account", "owner"), pk=pk
    )


def activity_section(request, opportunity: Opportunity) -> dict:
    """What the page's activities section shows: every activity, newest first, and the
    form to log one for whoever may."""
    may_log = opportunity.activities_may_be_logged_by(request.user)
    return {
        "activities": opportunity.activities.select_related("logged_by")
        .prefetch_related("contacts"),
        "may_log_activities": may_log,
        "activity_form": ActivityForm(account=opportunity.account) if may_log else None,
    }


def page_context(request, opportunity: Opportunity, **extra) -> dict:
    """The opportunity page's context, re-read after the change or refusal."""
    # opportunity_page imports this module for activity_section.
    from pipeline.opportunity_page import detail_context, visible_opportunity

    return detail_context(request, visible_opportunity(request, opportunity.pk), **extra)


def section(request, opportunity: Opportunity, *, status: int = 200, **extra
            ) -> TemplateResponse:
    """The activities section, and the checklist out of band: a planned call may meet
    stage 1's "the next call is scheduled"."""
    context = page_context(request, opportunity, oob_checklist=True, **extra)
    return TemplateResponse(request, "pipeline/_activities.html", context, status=status)


def refused(request, opportunity: Opportunity, refusal: ChangeRefused,
            form: ActivityForm | None = None) -> TemplateResponse:
    """The refusal with its 4xx status, above the section (htmx) or the page, with what
    was typed; nothing was changed."""
    extra = {"activity_refusal": refusal}
    if form is not None:
        extra["activity_form"] = form
    if request.htmx:
        return section(request, opportunity, status=refusal.status_code, **extra)
    return TemplateResponse(request, "pipeline/opportunity_detail.html",
                            page_context(request, opportunity, **extra),
                            status=refusal.status_code)


def changed(request, opportunity: Opportunity, message: str):
    if request.htmx:
        return section(request, opportunity, activity_notice=message)
    messages.success(request, message)
    return HttpResponseRedirect(opportunity.get_absolute_url() + "#activities")


@require_POST
@login_required
def activity_create(request, pk: int):
    opportunity = visible(request, pk)
    form = ActivityForm(request.POST, account=opportunity.account)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[name].label}: {error}" if name in form.fields
                           else str(error)
                           for name, errors in form.errors.items() for error in errors)
        return refused(request, opportunity, ChangeRefused(errors), form)
    data = form.cleaned_data
    try:
        activity = opportunity.log_activity(
            by=request.user, kind=data["kind"], at=data["at"], subject=data["subject"],
            notes=data["notes"], contacts=data["contacts"], done=data["status"] == "done",
            minutes=data["minutes"],
        )
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal, form)
    return changed(request, opportunity, _("%(kind)s “%(subject)s” logged.") % {
        "kind": activity.get_kind_display(), "subject": activity.subject})


@require_POST
@login_required
def activity_complete(request, pk: int, activity: int):
    return close_activity(request, pk, activity, done=True)


@require_POST
@login_required
def activity_cancel(request, pk: int, activity: int):
    return close_activity(request, pk, activity, done=False)


def close_activity(request, pk: int, activity: int, *, done: bool):
    """Mark a planned activity done or cancelled."""
    opportunity = visible(request, pk)
    close = opportunity.complete_activity if done else opportunity.cancel_activity
    try:
        close(activity, by=request.user)
    except ChangeRefused as refusal:
        return refused(request, opportunity, refusal)
    return changed(request, opportunity, _("Marked done.") if done else _("Cancelled."))


@require_GET
@login_required
def activity_calendar(request, pk: int, activity: int):
    """A planned meeting as an .ics file, for anyone who may see the opportunity."""
    opportunity = visible(request, pk)
    meeting = get_object_or_404(
        Activity.objects.filter(opportunity=opportunity).select_related(
            "opportunity__account"), pk=activity)
    if not meeting.has_calendar_entry:
        return refused(request, opportunity, ChangeRefused(
            _("Only a planned meeting goes into a calendar.")))
    text = meeting_calendar(
        meeting, link=request.build_absolute_uri(opportunity.get_absolute_url()),
        domain=request.get_host().split(":")[0] or "progression", now=timezone.now(),
    )
    response = HttpResponse(text.encode(), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="meeting-{meeting.pk}.ics"'
    return response
