"""What the opportunity page shows: the opportunity as this user may see it, its
checklists and sections. Shared by the page's views, the board's refusal dialog and the
other views of one opportunity (plans, orders, activities)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import ngettext

from crm.models import (
    Role,
    User,
)
from pipeline.activity_views import activity_section
from pipeline.forms import (
    ExtensionForm,
    MoveForm,
)
from pipeline.models import (
    Opportunity,
    Via,
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


def active_owners(user: User, *, every_team: bool):
    """The active reps and BDRs of every team, or of the user's teams, by name."""
    owners = User.objects.filter(is_active=True, groups__name__in=[Role.REP, Role.BDR])
    if not every_team:
        owners = owners.filter(team_id__in=user.team_ids)
    return owners.distinct().order_by("first_name", "last_name", "username")


def overdue_steps_text(opportunity: Opportunity) -> str:
    overdue = opportunity.overdue_step_count()
    if not overdue:
        return ""
    return ngettext("%d plan step overdue", "%d plan steps overdue", overdue) % overdue
