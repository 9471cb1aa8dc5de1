"""An opportunity's history as one list, newest first: every recorded change to it (stage
and field changes, extensions, ticks and their withdrawal, the champion, the committee,
the close plan, purchase orders), each with who and when.

Nothing here is stored twice: each entry is read from the row that records the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext

from pipeline.models import (
    ClosePlanEvent,
    CommitteeMember,
    CriterionTick,
    Opportunity,
    PurchaseOrder,
)

# Within one moment, the order a change writes its rows in, so that newest first stays
# true: a hand-over's field change before its stage change, a move back's withdrawn ticks
# before the move.
KIND_ORDER = {
    kind: order for order, kind in enumerate((
        "field", "withdrawal", "stage", "extension", "tick", "member_added",
        "member_removed", "member_confirmed", "champion_confirmed", "plan", "order_recorded",
        "order_reviewed",
    ))
}


@dataclass(frozen=True)
class Entry:
    kind: str
    at: datetime
    who: Any  # a user, a contact (the customer, through a share link), or None: the system
    entry: Any
    key: int  # the row's id: the order it was written in

    @property
    def by(self) -> str:
        return str(self.who) if self.who is not None else gettext("system")


def timeline(opportunity: Opportunity) -> list[Entry]:
    """Every recorded change, newest first: by time, then in the order written (two
    changes in the same second stay newest first)."""
    entries = [
        *(Entry("stage", c.changed_at, c.changed_by, c, c.pk)
          for c in opportunity.stage_changes.select_related("changed_by", "handed_to")),
        *(Entry("field", c.changed_at, c.changed_by, c, c.pk)
          for c in opportunity.field_changes.select_related("changed_by")),
        *(Entry("extension", e.granted_at, e.granted_by, e, e.pk)
          for e in opportunity.extensions.select_related("granted_by")),
        *tick_entries(opportunity),
        *committee_entries(opportunity),
        *plan_and_order_entries(opportunity),
    ]
    if opportunity.champion_confirmed_at and opportunity.champion_id:
        entries.append(Entry("champion_confirmed", opportunity.champion_confirmed_at,
                             opportunity.champion_confirmed_by, opportunity, 0))
    return sorted(entries, reverse=True, key=lambda e: (e.at, KIND_ORDER[e.kind], e.key))


def tick_entries(opportunity: Opportunity) -> list[Entry]:
    entries = []
    for tick in CriterionTick.objects.filter(opportunity=opportunity).select_related(
        "ticked_by", "revoked_by"
    ):
        entries.append(Entry("tick", tick.ticked_at, tick.ticked_by, tick, tick.pk))
        if tick.revoked_at:
            entries.append(Entry("withdrawal", tick.revoked_at, tick.revoked_by, tick, tick.pk))
    return entries


def committee_entries(opportunity: Opportunity) -> list[Entry]:
    entries = []
    for member in CommitteeMember.objects.filter(opportunity=opportunity).select_related(
        "contact", "added_by", "removed_by", "confirmed_by"
    ):
        entries.append(Entry("member_added", member.added_at, member.added_by, member,
                             member.pk))
        if member.confirmed_at:
            entries.append(Entry("member_confirmed", member.confirmed_at, member.confirmed_by,
                                 member, member.pk))
        if member.removed_at:
            entries.append(Entry("member_removed", member.removed_at, member.removed_by,
                                 member, member.pk))
    return entries


def plan_and_order_entries(opportunity: Opportunity) -> list[Entry]:
    entries = [
        Entry("plan", event.at, event.by_user or event.by_contact, event, event.pk)
        for event in ClosePlanEvent.objects.filter(plan__opportunity=opportunity)
        .select_related("by_user", "by_contact")
    ]
    for order in PurchaseOrder.objects.filter(opportunity=opportunity).select_related(
        "recorded_by", "reviewed_by"
    ):
        entries.append(Entry("order_recorded", order.recorded_at, order.recorded_by, order,
                             order.pk))
        if order.reviewed_at:
            entries.append(Entry("order_reviewed", order.reviewed_at, order.reviewed_by, order,
                                 order.pk))
    return entries
