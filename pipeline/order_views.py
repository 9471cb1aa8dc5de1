"""Offers, purchase orders, sales ops' review queue and the hand-offs of won deals.

Thin views as elsewhere: the query starts from the user, the model decides, the view
translates between HTTP and the model.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.models import business_days_between, fiscal_quarter, fiscal_quarter_bounds
from pipeline.forms import (
    HandoffAssignForm,
    OfferForm,
    OfferLineForm,
    PurchaseOrderForm,
    ReviewForm,
    VersionForm,
)
from pipeline.models import (
    ChangeForbidden,
    ChangeRefused,
    HandoffTask,
    Opportunity,
    PurchaseOrder,
    ReviewCheck,
)
from pipeline.opportunity_page import visible_opportunity
from pipeline.process import Stage

# Sales ops review a pending order within this many business days (process.md, stage 7).
REVIEW_TARGET_DAYS = 3
# An order whose quarter ends this soon is highlighted: a rejection costs days.
QUARTER_END_WARNING_DAYS = 7


def sales_ops_only(request) -> TemplateResponse:
    return TemplateResponse(request, "forbidden.html", {
        "refusal": ChangeForbidden(_("Only sales ops review purchase orders and hand-offs.")),
    }, status=403)


# --- the offer ---


@login_required
def offer_edit(request, pk: int) -> TemplateResponse:
    """The offer's period and terms, its lines, and a line to add."""
    opportunity = visible_opportunity(request, pk)
    offer = opportunity.current_offer()
    form = OfferForm(request.POST or None, instance=offer,
                     initial={"version": opportunity.version})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                opportunity.save_offer(
                    by=request.user, service_start=data["service_start"],
                    service_end=data["service_end"], payment_terms=data["payment_terms"],
                    terms=data["terms"], expected_version=data["version"])
            except ChangeRefused as refusal:
                return offer_page(request, opportunity, form=form, refusal=refusal)
            messages.success(request, _("Offer saved."))
            return HttpResponseRedirect(reverse("pipeline:offer_edit", args=[pk]))
        status = 400
    return offer_page(request, opportunity, form=form, status=status)


def offer_page(request, opportunity: Opportunity, *, form=None, line_form=None,
               refusal: ChangeRefused | None = None, status: int | None = None):
    opportunity.reload()
    offer = opportunity.current_offer()
    return TemplateResponse(request, "pipeline/offer.html", {
        "opportunity": opportunity,
        "offer": offer,
        "form": form or OfferForm(instance=offer, initial={"version": opportunity.version}),
        "line_form": line_form or OfferLineForm(initial={"version": opportunity.version}),
        "can_edit": opportunity.can_edit(request.user) and not (offer and offer.is_agreed),
        "refusal": refusal,
    }, status=status or (refusal.status_code if refusal else 200))


@require_POST
@login_required
def offer_line_add(request, pk: int):
    opportunity = visible_opportunity(request, pk)
    form = OfferLineForm(request.POST)
    if not form.is_valid():
        return offer_page(request, opportunity, line_form=form, status=400)
    data = form.cleaned_data
    try:
        opportunity.add_offer_line(
            by=request.user, kind=data["kind"], description=data["description"],
            quantity=data["quantity"], list_price=data["list_price"],
            discount_percent=data["discount_percent"], expected_version=data["version"])
    except ChangeRefused as refusal:
        return offer_page(request, opportunity, line_form=form, refusal=refusal)
    messages.success(request, _("Line added."))
    return HttpResponseRedirect(reverse("pipeline:offer_edit", args=[pk]))


@require_POST
@login_required
def offer_line_remove(request, pk: int, line: int):
    opportunity = visible_opportunity(request, pk)
    try:
        opportunity.remove_offer_line(line, by=request.user,
                                      expected_version=VersionForm.posted(request))
    except ChangeRefused as refusal:
        return offer_page(request, opportunity, refusal=refusal)
    messages.success(request, _("Line removed."))
    return HttpResponseRedirect(reverse("pipeline:offer_edit", args=[pk]))


# --- the purchase order ---


@login_required
def order_create(request, pk: int) -> TemplateResponse:
    """At Finalizing: record the order the customer sent, with its document."""
    opportunity = visible_opportunity(request, pk)
    offer = opportunity.current_offer()
    lines = offer.current_lines() if offer else []
    initial = {"currency": opportunity.currency, "version": opportunity.version,
               "amount": offer.total() if offer else opportunity.amount}
    if offer:
        initial.update(service_start=offer.service_start, service_end=offer.service_end,
                       terms=offer.terms)
    form = PurchaseOrderForm(request.POST or None, request.FILES or None, offer_lines=lines,
                             initial=initial)
    context = {"opportunity": opportunity, "form": form}
    if request.method != "POST":
        return TemplateResponse(request, "pipeline/order_form.html", context)
    if not form.is_valid():
        return TemplateResponse(request, "pipeline/order_form.html", context, status=400)
    data = form.cleaned_data
    try:
        opportunity.record_purchase_order(
            by=request.user, number=data["number"], amount=data["amount"],
            currency=data["currency"], document=data["document"], terms=data["terms"],
            service_start=data["service_start"], service_end=data["service_end"],
            lines=data["lines"], expected_version=data["version"])
    except ChangeRefused as refusal:
        context["refusal"] = refusal
        return TemplateResponse(request, "pipeline/order_form.html", context,
                                status=refusal.status_code)
    messages.success(request, _("Purchase order recorded."))
    return HttpResponseRedirect(opportunity.get_absolute_url())


@login_required
def order_document(request, pk: int) -> FileResponse:
    """The order's document, to whoever may see its opportunity; nobody else learns it
    exists."""
    order = get_object_or_404(
        PurchaseOrder.objects.filter(
            opportunity__in=Opportunity.objects.visible_to(request.user)), pk=pk)
    try:
        document = order.document.open("rb")
    except FileNotFoundError:
        raise Http404(_("The document is missing from the document store.")) from None
    inline = order.document_type in ("pdf", "png", "jpeg")
    response = FileResponse(document, content_type=order.content_type,
                            as_attachment=not inline, filename=order.document_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"  # a document runs no script here
    return response


# --- sales ops: the queue, the review, the hand-offs ---


@login_required
def order_queue(request) -> TemplateResponse:
    """Every pending opportunity, longest waiting first, against the review target."""
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    latest_order = PurchaseOrder.objects.filter(opportunity=OuterRef("pk")).order_by(
        "-recorded_at", "-pk").values("number")[:1]
    pending = (
        Opportunity.objects.visible_to(request.user).filter(stage=Stage.PENDING)
        .select_related("account", "owner")
        .only("name", "amount", "currency", "expected_close_date", "stage",
              "stage_entered_at", "account__name", "owner__first_name",
              "owner__last_name", "owner__username")
        .annotate(order_number=Subquery(latest_order))
        .order_by("stage_entered_at", "pk")
    )
    today = timezone.localdate()
    return TemplateResponse(request, "pipeline/orders.html", {
        "rows": [queue_row(opportunity, today) for opportunity in pending],
        "target_days": REVIEW_TARGET_DAYS,
    })


def queue_row(opportunity: Opportunity, today) -> dict:
    """One row, its words formatted here: a template tag per row costs more than this
    for a queue of a thousand orders (docs/benchmarks.md)."""
    waited = business_days_between(timezone.localdate(opportunity.stage_entered_at), today)
    quarter_ends = fiscal_quarter_bounds(*fiscal_quarter(opportunity.expected_close_date))[1]
    days_left = (quarter_ends - today).days
    return {
        "opportunity": opportunity,
        "amount": f"{number_format(opportunity.amount, 2, force_grouping=True)} "
                  f"{opportunity.currency}",
        "waited": ngettext("%(days)d business day of %(target)d",
                           "%(days)d business days of %(target)d", waited)
        % {"days": waited, "target": REVIEW_TARGET_DAYS},
        "late": waited > REVIEW_TARGET_DAYS,
        "quarter_ends_soon": 0 < days_left <= QUARTER_END_WARNING_DAYS,
    }


@login_required
def order_review(request, pk: int) -> TemplateResponse:
    """The order's document beside the agreed offer, mismatches flagged, and the decision."""
    opportunity = visible_opportunity(request, pk)
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    return review_page(request, opportunity)


def review_page(request, opportunity: Opportunity, *, form=None,
                refusal: ChangeRefused | None = None, status: int = 200):
    opportunity.reload()
    order = opportunity.current_purchase_order()
    offer = opportunity.current_offer()
    mismatches = order.mismatches(offer) if order else {}
    return TemplateResponse(request, "pipeline/order_review.html", {
        "opportunity": opportunity,
        "order": order,
        "offer": offer,
        "checks": [{"check": check, "label": label, "flags": mismatches.get(check, [])}
                   for check, label in ReviewCheck.choices],
        "form": form or ReviewForm(initial={"version": opportunity.version}),
        "may_decide": opportunity.stage == Stage.PENDING and order is not None
        and not order.outcome,
        "refusal": refusal,
    }, status=refusal.status_code if refusal else status)


@require_POST
@login_required
def order_decide(request, pk: int, decision: str) -> TemplateResponse:
    """Approve (every check confirmed) or reject (the failed checks and a note)."""
    opportunity = visible_opportunity(request, pk)
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return review_page(request, opportunity, form=form, status=400)
    data = form.cleaned_data
    checks = set(data["checks"])
    try:
        if decision == "approve":
            opportunity.approve_order(by=request.user, confirmed=checks,
                                      expected_version=data["version"])
            messages.success(request, _("“%s” is closed; its hand-off tasks are on the "
                                        "list.") % opportunity.name)
        else:
            # The boxes left unticked are the checks that failed.
            opportunity.reject_order(by=request.user, failed=set(ReviewCheck.values) - checks,
                                     note=data["note"], expected_version=data["version"])
            messages.success(request, _("“%s” is back in Finalizing; its owner was told why.")
                             % opportunity.name)
    except ChangeRefused as refusal:
        return review_page(request, opportunity, form=form, refusal=refusal)
    return HttpResponseRedirect(reverse("pipeline:order_queue"))


@login_required
def handoff_list(request) -> TemplateResponse:
    """Hand-off tasks of won deals: open ones first, oldest first; the last done ones."""
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    tasks = HandoffTask.objects.select_related(
        "opportunity__account", "opportunity__owner", "assigned_to", "done_by")
    return TemplateResponse(request, "pipeline/handoffs.html", {
        "open_tasks": tasks.filter(done_at__isnull=True).order_by("created_at", "pk")[:500],
        "done_tasks": tasks.filter(done_at__isnull=False).order_by("-done_at", "-pk")[:50],
        "colleagues": list(HandoffTask.sales_ops_colleagues()),
    })


@require_POST
@login_required
def handoff_done(request, pk: int):
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    task = get_object_or_404(HandoffTask, pk=pk)
    task.mark_done(by=request.user)
    messages.success(request, _("“%s” is done.") % task)
    return HttpResponseRedirect(reverse("pipeline:handoff_list"))


@require_POST
@login_required
def handoff_assign(request, pk: int):
    if not request.user.reviews_orders:
        return sales_ops_only(request)
    task = get_object_or_404(HandoffTask, pk=pk)
    form = HandoffAssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a colleague in sales ops."))
        return HttpResponseRedirect(reverse("pipeline:handoff_list"))
    task.assign(form.cleaned_data["assigned_to"], by=request.user)
    messages.success(request, _("“%(task)s” is assigned to %(who)s.")
                     % {"task": task, "who": task.assigned_to})
    return HttpResponseRedirect(reverse("pipeline:handoff_list"))

