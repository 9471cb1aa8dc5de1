"""The board: its columns with their totals and first cards, "Load more", the card's
"Move to…" menu, and what a move or a refused move sends back to the board. Thin views:
queries start from request.user."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from crm.models import fiscal_quarter, fiscal_quarter_bounds, fiscal_quarters_around
from pipeline.forms import (
    BoardFilterForm,
    MoveForm,
)
from pipeline.models import (
    ActivityKind,
    ChangeRefused,
    Conflict,
    HygieneFlag,
    Opportunity,
    OpportunityType,
    Outcome,
    Totals,
    count_progress,
)
from pipeline.opportunity_page import (
    active_owners,
    detail_context,
    overdue_steps_text,
    previous_stage,
    still_missing,
    visible_opportunity,
)
from pipeline.process import ORDERED_STAGES, PROCESS, Stage


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


# --- The board's side of a move from the card ---


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
