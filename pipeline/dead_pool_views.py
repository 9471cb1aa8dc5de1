"""The dead pool's page: BDRs, managers and sales ops list the dead opportunities they may
see, filter them and export them; BDRs claim and release them; reopening goes through
`Opportunity.reopen`, which decides where to.

Thin views as elsewhere: the query starts from the user, the model decides.
"""

from __future__ import annotations

import csv
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import InvalidPage, Paginator
from django.http import HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.models import User, spreadsheet_text
from pipeline.forms import DeadPoolFilterForm, ReopenForm
from pipeline.models import ChangeForbidden, ChangeRefused, Opportunity
from pipeline.opportunity_page import active_owners
from pipeline.process import DeadReason, Stage


def not_for_this_role(request) -> TemplateResponse | None:
    """A 403 page for everyone but BDRs, managers and sales ops; None for them."""
    if request.user.sees_dead_pool:
        return None
    return TemplateResponse(request, "forbidden.html", {
        "refusal": ChangeForbidden(_("The dead pool is for BDRs, managers and sales ops.")),
    }, status=403)


def pool_filters(request, data) -> DeadPoolFilterForm:
    user = request.user
    every_team = user.is_superuser or user.is_sales_ops or user.is_bdr
    form = DeadPoolFilterForm(data, owners=active_owners(user, every_team=every_team),
                              window_days=settings.PROGRESSION_REOPEN_WINDOW_DAYS)
    form.is_valid()
    return form


def pool_rows(request, filters: DeadPoolFilterForm, now: datetime):
    data = filters.cleaned_data
    return Opportunity.objects.dead_visible_to(request.user).in_pool().pool_matching(
        user=request.user, now=now, stage=data.get("stage", ""),
        reason=data.get("reason", ""), owner=data.get("owner"),
        account=data.get("account", ""), age=data.get("age", ""),
        claimed=data.get("claimed", ""),
    )


# A row's links, reversed once per page with a stand-in id: reversing four URLs for
# each of 50 rows was a quarter of the page's time.
ROW_URLS = ("opportunity_detail", "dead_pool_claim", "dead_pool_release", "dead_pool_reopen")


def row_url_patterns() -> dict[str, str]:
    return {name: reverse(f"pipeline:{name}", args=[0]).replace("/0/", "/{pk}/")
            for name in ROW_URLS}


def pool_row(opportunity: Opportunity, user: User, now: datetime,
             urls: dict[str, str]) -> dict:
    """One row as shown, with what this user may do to it; no query of its own (the
    stage of death and the claim come annotated, the owner selected)."""
    reopens_in = opportunity.reopen_stage(now)
    claimer_id = opportunity.claimer_id
    claimed_by_another = claimer_id is not None and claimer_id != user.pk
    return {
        "opportunity": opportunity,
        "urls": {name: pattern.format(pk=opportunity.pk) for name, pattern in urls.items()},
        "died_in": opportunity.stage_of_death(),
        "days_dead": opportunity.days_dead(now),
        "reopens_in": reopens_in,
        "claimer": opportunity.claimer_name,
        "may_claim": user.is_bdr and claimer_id is None,
        "may_release": claimer_id is not None and (
            user.is_superuser or claimer_id == user.pk
            or (user.is_manager and opportunity.claimer_team_id in user.team_ids)),
        "may_reopen": opportunity.can_move(user, reopens_in)
        and not (claimed_by_another and user.is_bdr and not user.is_superuser),
    }


def pool_page(request, data: QueryDict, *, refusal: ChangeRefused | None = None,
              status: int = 200) -> TemplateResponse:
    """The pool's page (or, for htmx, its table) for these filters and page number."""
    now = timezone.now()
    filters = pool_filters(request, data)
    context = {"filters": filters, "refusal": refusal, "rows": [], "page": None,
               "reopen_form": ReopenForm(),
               "window_days": settings.PROGRESSION_REOPEN_WINDOW_DAYS}
    if filters.errors:
        status = 400
    else:
        paginator = Paginator(pool_rows(request, filters, now), settings.DEAD_POOL_PAGE_SIZE)
        try:
            page = paginator.page(data.get("page") or 1)
        except InvalidPage:
            context["refusal"] = ChangeRefused(
                _("There is no page “%s” of the dead pool with these filters.")
                % data.get("page"))
            page, status = None, 400
        if page is not None:
            context["page"] = page
            urls = row_url_patterns()
            context["rows"] = [pool_row(opportunity, request.user, now, urls)
                               for opportunity in page]
    filters_only = data.copy()
    filters_only.pop("page", None)
    context["query_string"] = filters_only.urlencode()
    context["here"] = data.urlencode()  # where a claim or a reopening comes back to
    template = "pipeline/dead_pool.html#pool" if request.htmx else "pipeline/dead_pool.html"
    return TemplateResponse(request, template, context, status=status)


@login_required
def dead_pool(request) -> TemplateResponse:
    return not_for_this_role(request) or pool_page(request, request.GET)


class Echo:
    """A file-like object handing each written line straight back, for streaming."""

    def write(self, value: str) -> str:
        return value


@login_required
def dead_pool_export(request):
    """Every row the filters select (not only the page shown), as CSV, streamed in chunks
    so memory stays flat however large the pool."""
    refusal = not_for_this_role(request)
    if refusal:
        return refusal
    now = timezone.now()
    filters = pool_filters(request, request.GET)
    if filters.errors:
        return pool_page(request, request.GET)
    rows = pool_rows(request, filters, now)
    header = [_("Id"), _("Opportunity"), _("Account"), _("Owner"), _("Died in"),
              _("Reason"), _("Note"), _("Dead since"), _("Days dead"), _("Amount"),
              _("Currency"), _("Claimed by")]
    reasons = dict(DeadReason.choices)

    def lines():
        writer = csv.writer(Echo())
        yield writer.writerow(header)
        for opportunity in rows.iterator(chunk_size=1000):
            yield writer.writerow([spreadsheet_text(value) for value in (
                opportunity.pk, opportunity.name, opportunity.account.name, opportunity.owner,
                opportunity.stage_of_death().label,
                reasons.get(opportunity.dead_reason, opportunity.dead_reason),
                opportunity.dead_note,
                timezone.localtime(opportunity.stage_entered_at).date().isoformat(),
                opportunity.days_dead(now), opportunity.amount, opportunity.currency,
                opportunity.claimer_name or "",
            )])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="dead-pool-{timezone.localdate().isoformat()}.csv"')
    return response


def back_to_pool(request) -> HttpResponseRedirect:
    """To the pool with the filters and page the change was made from."""
    shown = QueryDict(request.POST.get("filters", "").lstrip("?"))
    query = shown.urlencode()
    return HttpResponseRedirect(reverse("pipeline:dead_pool") + (f"?{query}" if query else ""))


def pool_change(request, pk: int, change) -> TemplateResponse | HttpResponseRedirect:
    """Claims, releases and reopenings share their shape: find, ask the model, go back
    to the pool, or show the refusal on it."""
    refusal = not_for_this_role(request)
    if refusal:
        return refusal
    opportunity = get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related("owner"), pk=pk)
    try:
        message = change(opportunity)
    except ChangeRefused as refused:
        shown = QueryDict(request.POST.get("filters", "").lstrip("?"))
        return pool_page(request, shown, refusal=refused, status=refused.status_code)
    messages.success(request, message)
    return back_to_pool(request)


@require_POST
@login_required
def dead_pool_claim(request, pk: int):
    def claim(opportunity: Opportunity) -> str:
        opportunity.claim(by=request.user)
        return _("You claimed “%s”.") % opportunity.name

    return pool_change(request, pk, claim)


@require_POST
@login_required
def dead_pool_release(request, pk: int):
    def release(opportunity: Opportunity) -> str:
        opportunity.release_claim(by=request.user)
        return _("“%s” is unclaimed again.") % opportunity.name

    return pool_change(request, pk, release)


@require_POST
@login_required
def dead_pool_reopen(request, pk: int):
    def reopen(opportunity: Opportunity) -> str:
        form = ReopenForm(request.POST)
        if not form.is_valid():
            raise ChangeRefused("; ".join(str(error) for errors in form.errors.values()
                                          for error in errors))
        opportunity.reopen(by=request.user, reason=form.cleaned_data["reason"],
                           expected_version=form.cleaned_data["version"])
        return _("“%(name)s” reopened in %(stage)s.") % {
            "name": opportunity.name, "stage": Stage(opportunity.stage).label}

    return pool_change(request, pk, reopen)
