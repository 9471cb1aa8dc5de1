"""Thin views: parse the request, ask the model, render. Queries start from request.user."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.models import (
    Account,
    Role,
    User,
    fiscal_quarter,
    fiscal_quarter_bounds,
    fiscal_quarters_around,
)
from pipeline.activity_views import activity_section
from pipeline.forms import (
    BoardFilterForm,
    ContactChoiceForm,
    ExtensionForm,
    MoveForm,
    OpportunityForm,
    TickForm,
)
from pipeline.models import (
    ActivityKind,
    ChangeForbidden,
    ChangeRefused,
    Conflict,
    HygieneFlag,
    Opportunity,
    OpportunityType,
    Outcome,
    Totals,
    Via,
    count_progress,
)
from pipeline.process import ORDERED_STAGES, PROCESS, Stage, next_stage
from pipeline.timeline import timeline


def visible_opportunity(request, pk: int) -> Opportunity:
    """The opportunity if this user may see it; 404 otherwise, so ids do not leak."""
    return get_object_or_404(
        Opportunity.objects.visible_to(request.user).with_checklist(), pk=pk
    )


def via_of(request) -> Via:
    return Via.BOARD if request.htmx and request.POST.get("via") == "board" else Via.PAGE


def stage_checklists(opportunity: Opportunity, up_to: Stage | None = None) -> list[dict]:
    """The exit criteria of every stage it passed and of the current one (or up to `up_to`,
    the stage a multi-stage move stopped at); those not passed yet can still be ticked."""
    ticks = opportunity.active_tick_map()
    current = Stage(opportunity.stage)
    last = (up_to or current).order or len(ORDERED_STAGES)
    checklists = []
    for stage in ORDERED_STAGES[:last]:
        criteria = PROCESS[stage].exit_criteria
        if not criteria:
            continue
        checklists.append({
            "stage": stage,
            "is_current": stage == current,
            "is_open": current.order is not None and stage.order >= current.order,
            "items": [
                {"criterion": c, "met": opportunity.criterion_met(c, ticks),
                 "tick": ticks.get(c.key)}
                for c in criteria
            ],
        })
    return checklists


def detail_context(request, opportunity: Opportunity, up_to: Stage | None = None,
                   **extra) -> dict:
    user = request.user
    targets = opportunity.move_targets_for(user)
    return {
        "opportunity": opportunity,
        "checklists": stage_checklists(opportunity, up_to),
        "committee": opportunity.active_committee(),
        "contacts": opportunity.account.contacts.filter(archived_at__isnull=True),
        "timeline": timeline(opportunity),
        "move_targets": targets,
        "needs_reason": {stage.value for stage in targets if opportunity.needs_reason_for(stage)},
        "next_stage": next_stage(Stage(opportunity.stage)),
        "can_edit": opportunity.can_edit(user),
        "can_extend": opportunity.stage_deadline is not None
        and (user.is_superuser or opportunity.is_managed_by(user)),
        "move_form": MoveForm(initial={"version": opportunity.version}),
        "extension_form": ExtensionForm(initial={"version": opportunity.version}),
        "offer": opportunity.current_offer(),
        "plan": opportunity.current_close_plan(),
        "plan_overdue": overdue_steps_text(opportunity),
        "order": opportunity.current_purchase_order(),
        "can_record_order": opportunity.stage == Stage.FINALIZING
        and opportunity.can_edit(user),
        "may_review": opportunity.stage == Stage.PENDING
        and user.reviews_orders,
        **activity_section(request, opportunity),
        **extra,
    }


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


def still_missing(checklists: list[dict]) -> list[dict]:
    """For the refusal dialog: what the whole move still needs, grouped by the stage it
    must leave, in order; empty once the move can be retried."""
    groups = []
    for checklist in checklists:
        unmet = [item["criterion"] for item in checklist["items"] if not item["met"]]
        if checklist["is_open"] and unmet:
            groups.append({"stage": checklist["stage"], "criteria": unmet})
    return groups


def previous_stage(value: str) -> Stage | None:
    """For the refusal dialog: show the checklists up to the stage before the target."""
    if value not in Stage.values or Stage(value).order in (None, 1):
        return None
    return ORDERED_STAGES[Stage(value).order - 2]


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


def active_owners(user: User, *, every_team: bool):
    """The active reps and BDRs of every team, or of the user's teams, by name."""
    owners = User.objects.filter(is_active=True, groups__name__in=[Role.REP, Role.BDR])
    if not every_team:
        owners = owners.filter(team_id__in=user.team_ids)
    return owners.distinct().order_by("first_name", "last_name", "username")


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


def move_menu_context(request, opportunity: Opportunity) -> dict:
    targets = opportunity.move_targets_for(request.user)
    chosen = request.GET.get("stage")
    return {
        "opportunity": opportunity,
        "targets": targets,
        "chosen": chosen if chosen in targets else "",
        "needs_reason": {stage.value for stage in targets if opportunity.needs_reason_for(stage)},
        "move_form": MoveForm(initial={"version": opportunity.version}),
        "filters": request.GET.get("filters", ""),
    }


def board_refusal(request, opportunity: Opportunity, refusal: ChangeRefused, *,
                  source: Stage, target: Stage) -> TemplateResponse:
    """The card goes back (its columns are re-rendered) and the dialog says why."""
    opportunity = visible_opportunity(request, opportunity.pk)
    response = board_after_refusal(
        request, opportunity, refresh={source, target, Stage(opportunity.stage)},
        notice=refusal.message if isinstance(refusal, Conflict) else "",
        status=refusal.status_code,
    )
    response.context_data["refusal"] = refusal
    if getattr(refusal, "stage", None):  # a gate: everything the whole jump needs, at once
        context = detail_context(request, opportunity, up_to=previous_stage(target.value))
        response.context_data.update(context, retry_target=target.value,
                                     still_missing=still_missing(context["checklists"]))
    response["HX-Trigger-After-Settle"] = json.dumps({"moveRefused": {
        "id": opportunity.pk, "stage": opportunity.stage, "conflict": isinstance(refusal, Conflict),
    }})
    return response


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


# --- The board ---


def board_filters(request, data) -> BoardFilterForm:
    user = request.user
    owners = active_owners(user, every_team=user.is_superuser or user.is_sales_ops)
    form = BoardFilterForm(data, owners=owners)
    form.is_valid()
    return form


def board_opportunities(request, filters: BoardFilterForm):
    data = filters.cleaned_data
    closed_since = None
    if data.get("closed") != "all":
        closed_since = fiscal_quarter_bounds(*fiscal_quarter(timezone.localdate()))[0]
    return Opportunity.objects.visible_to(request.user).matching(
        user=request.user, scope=data.get("scope", ""), owner=data.get("owner"),
        type=data.get("type", ""), category=data.get("category", ""),
        closing_quarter=filters.closing_quarter(), text=data.get("q", ""),
        closed_since=closed_since,
    )


def board_stages(filters: BoardFilterForm) -> list[Stage]:
    return [*ORDERED_STAGES, *([Stage.DEAD] if filters.cleaned_data.get("dead") else [])]


def card(opportunity: Opportunity, user, now) -> dict:
    """What a card shows, as finished strings: rendering 200 cards is most of the board's
    time, and a template tag or filter per field costs more than formatting it here."""
    met, total = opportunity.criteria_progress()
    if opportunity.stage in (Stage.PENDING, Stage.CLOSED):
        movable = False
    elif opportunity.stage == Stage.DEAD:
        movable = opportunity.can_move(user, Stage.IDENTIFYING)
    else:
        movable = opportunity.can_edit(user)
    timeout = opportunity.timeout_days()
    close_date = opportunity.expected_close_date
    pk = opportunity.pk
    language = get_language()
    labels = card_labels(language)
    return {
        # Digits and keys need no escaping.
        "id": mark_safe(pk),
        "version": mark_safe(opportunity.version),
        # Column order as one string the page can compare: close date, then id.
        "sort_key": mark_safe(f"{close_date.isoformat()}/{pk:012d}"),
        "movable": mark_safe("true" if movable else "false"),
        "timeout_state": mark_safe(opportunity.timeout_state(now)),
        "name": opportunity.name,
        "account": opportunity.account.name,
        "amount": f"{whole_amount(opportunity.amount)} {opportunity.currency}",
        "meta": f"{short_date(close_date, language)} · {opportunity.owner} · "
                f"{labels[opportunity.type]}",
        "progress": labels["progress"] % {"met": met, "total": total} if total else "",
        "age": labels["age"] % {"days": opportunity.days_in_stage(now), "timeout": timeout}
        if timeout else "",
        "progress_title": labels["progress_title"],
        "can_move": movable,
        "move_label": labels["move_to"],
        "plan_overdue": overdue_steps_text(opportunity) if opportunity.is_open else "",
        "hygiene": " · ".join(labels[flag] for flag
                              in opportunity.hygiene_flags(timezone.localdate(now))),
        # Sales ops sent the order back: the card says so until a new one is recorded.
        "order_rejected": labels["order_rejected"] if opportunity.stage == Stage.FINALIZING
        and (order := opportunity.current_purchase_order()) is not None
        and order.outcome == Outcome.REJECTED else "",
        **next_activity_text(opportunity, labels),
    }


def next_activity_text(opportunity: Opportunity, labels: dict) -> dict:
    """The card's next planned activity ("Meeting 12/8/26 10:00"), or, on an open
    opportunity, the mark that none is planned. Board cards bring it annotated."""
    at, kind = opportunity.next_planned()
    if at is None:
        worked = opportunity.is_open and opportunity.stage != Stage.PENDING
        return {"next_activity": "", "no_activity": labels["no_activity"] if worked else ""}
    when = date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT")
    return {"next_activity": f"{labels[kind]} {when}", "no_activity": ""}


def overdue_steps_text(opportunity: Opportunity) -> str:
    overdue = opportunity.overdue_step_count()
    if not overdue:
        return ""
    return ngettext("%d plan step overdue", "%d plan steps overdue", overdue) % overdue


def listed_card(opportunity: Opportunity, user, now) -> dict:
    """A card for a column's list, with its markup (the single cards a move or a tick
    sends back are rendered out of band by the template instead)."""
    item = card(opportunity, user, now)
    item["html"] = card_html(tuple(item.items()))
    return item


@lru_cache(maxsize=4096)  # a few megabytes per process at most
def card_html(item: tuple) -> str:
    """A card's markup, rendered once per distinct content (what card() computed, the
    words in the viewer's language included): a board shows the same cards at every
    reload, and rendering 200 cards through the template was a third of its time."""
    return get_template("pipeline/board.html#card").render({"item": dict(item)})


@lru_cache(maxsize=16)
def card_labels(language: str) -> dict[str, str]:
    """The words every card repeats, translated once per language rather than 800 times
    per board."""
    return {
        **{key: str(label) for key, label in OpportunityType.choices},
        "progress": _("%(met)d/%(total)d criteria"),
        "age": _("%(days)d/%(timeout)d days"),
        "progress_title": _("Exit criteria met"),
        "move_to": _("Move to…"),
        "order_rejected": _("Order rejected"),
        **{flag: str(flag.label) for flag in HygieneFlag},
        **{key: str(label) for key, label in ActivityKind.choices},
        "no_activity": _("Nothing planned"),
    }


def whole_amount(amount: Decimal) -> str:
    """An amount rounded to whole units and grouped, as `floatformat:"0g"` shows it."""
    return number_format(amount.quantize(Decimal(1), ROUND_HALF_UP), 0, force_grouping=True)


@lru_cache(maxsize=4096)
def short_date(value: date, language: str) -> str:
    """Cards share close dates, and formatting a date is costly: each is formatted once
    per language."""
    return date_format(value, "SHORT_DATE_FORMAT")


def board_columns(request, opportunities, stages: list[Stage]) -> list[dict]:
    """Every column's header totals and first cards, in a fixed number of queries."""
    per_column = settings.BOARD_COLUMN_SIZE
    totals = Totals.by_stage(opportunities.filter(stage__in=stages))
    cards: dict[str, list] = {stage: [] for stage in stages}
    now = timezone.now()
    for opportunity in opportunities.first_of_each_stage(stages, per_column):
        cards[opportunity.stage].append(listed_card(opportunity, request.user, now))
    columns = []
    for stage in stages:
        stage_totals = totals.get(stage, Totals())
        columns.append(column(stage, stage_totals, cards[stage],
                              has_more=len(cards[stage]) < stage_totals.count))
    return columns


def column(stage: Stage, totals: Totals, cards: list, *, has_more: bool) -> dict:
    return {
        "stage": stage,
        "rule": PROCESS[stage],
        "totals": totals,
        "cards": cards,
        "has_more": has_more,
        # "Load more" continues after the last card shown (see OpportunityQuerySet.after).
        "after": cards[-1]["sort_key"] if cards else "",
        # A drop on Pending submits the order for review, through the gate like any drop.
        "accepts_drops": stage != Stage.CLOSED,
    }


def card_key(value: str) -> tuple[date, int] | None:
    """A card's sort key ("2026-12-01/000000000042") as (close date, id); ValueError if it
    is not one."""
    if not value:
        return None
    close_date, pk = value.split("/")
    return date.fromisoformat(close_date), int(pk)


@login_required
def board(request) -> TemplateResponse:
    filters = board_filters(request, request.GET)
    opportunities = board_opportunities(request, filters)
    return TemplateResponse(request, "pipeline/board.html", {
        "filters": filters,
        "columns": board_columns(request, opportunities, board_stages(filters)),
        "query_string": request.GET.urlencode(),
        "quarters": fiscal_quarters_around(timezone.localdate(), before=2, after=4),
    }, status=400 if filters.errors else 200)


@login_required
def board_column(request, stage: str) -> TemplateResponse:
    """"Load more": the cards of one column after the last one shown, for the same filters."""
    try:
        stage = Stage(stage)
    except ValueError:
        return column_error(request, _("That column does not exist."))
    try:
        after = card_key(request.GET.get("after", ""))
    except ValueError:
        return column_error(request, _("Those cards cannot be found."))
    filters = board_filters(request, request.GET)
    if filters.errors:
        return column_error(request, _("Those filters are not valid; reload the board."))
    opportunities = board_opportunities(request, filters).filter(stage=stage)
    size = settings.BOARD_COLUMN_SIZE
    # One card more than shown tells whether there are more still.
    page = count_progress(list(opportunities.column_order().after(after).cards()[:size + 1]))
    now = timezone.now()
    cards = [listed_card(opportunity, request.user, now) for opportunity in page[:size]]
    filters_only = request.GET.copy()
    filters_only.pop("after", None)
    return TemplateResponse(request, "pipeline/board.html#more_cards", {
        "column": column(stage, Totals(), cards, has_more=len(page) > size),
        "query_string": filters_only.urlencode(),
    })


def column_error(request, message: str) -> TemplateResponse:
    return TemplateResponse(request, "pipeline/board.html#column_error", {"error": message},
                            status=400)


def board_after_move(request, opportunity: Opportunity, *, source: Stage, notice: str,
                     undo_to: Stage | None = None) -> TemplateResponse:
    """The moved card and the headers of the columns it left and joined, out of band; the
    page puts the card in its place (board.js). The columns themselves are not re-rendered:
    "Load more" pages by key, so the cards already shown stay valid."""
    filters = board_filters(request, QueryDict(request.POST.get("filters", "").lstrip("?")))
    opportunities = board_opportunities(request, filters)
    stages = [stage for stage in board_stages(filters)
              if stage in (source, opportunity.stage)]
    # Still on this board? A filter (say, the forecast category) may no longer match; the
    # headers' query tells. The card itself comes from what the move read and wrote (see
    # Opportunity._become).
    totals = Totals.by_stage(opportunities.filter(stage__in=stages), holding=opportunity.pk)
    on_board = totals.get(Stage(opportunity.stage), Totals()).holds
    response = TemplateResponse(request, "pipeline/board.html#moved", {
        "columns": [column(stage, totals.get(stage, Totals()), [], has_more=False)
                    for stage in stages],
        "item": card(opportunity, request.user, timezone.now()) if on_board else None,
        "notice": notice,
        "opportunity": opportunity,
        "undo_to": undo_to,
        "query_string": filters.data.urlencode(),
    })
    response["HX-Trigger-After-Settle"] = json.dumps({"boardMoved": {
        "id": opportunity.pk, "stage": opportunity.stage, "shown": bool(on_board),
    }})
    return response


def board_after_refusal(request, opportunity: Opportunity, *, refresh: set[Stage],
                        notice: str, status: int) -> TemplateResponse:
    """Re-render the columns a refused move touched, headers and cards, out of band: after
    a conflict the card shows where it really is, and who moved it."""
    filters = board_filters(request, QueryDict(request.POST.get("filters", "").lstrip("?")))
    opportunities = board_opportunities(request, filters)
    stages = [stage for stage in board_stages(filters) if stage in refresh]
    return TemplateResponse(request, "pipeline/board.html#move_refused", {
        "columns": board_columns(request, opportunities, stages),
        "notice": notice,
        "notice_is_warning": True,
        "opportunity": opportunity,
        "query_string": filters.data.urlencode(),
    }, status=status)
