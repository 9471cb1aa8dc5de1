"""Privacy for one contact, on the pipeline's side (issue 13): everything stored about
them, as the contact page shows it and as a JSON export; and, when crm erases them, the
free text about their account's deals scrubbed of what named them.

In pipeline because it spans the committee, activities, close plans and history, which
crm (owner of Contact and of `Contact.erase`) may not import.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q, QuerySet

from crm.erasure import ContactErasure, Scrubber
from crm.models import Contact, User
from pipeline.models import (
    Activity,
    ClosePlan,
    ClosePlanEvent,
    ClosePlanStep,
    CommitteeMember,
    CriterionTick,
    DeadlineExtension,
    FieldChange,
    OfferLine,
    Opportunity,
    PurchaseOrder,
    ShareLink,
    StageChange,
)

# The free text kept about an account's deals, and the way from each row to the account.
TEXTS: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (Opportunity, "account", ("name", "next_step", "dead_note")),
    (Activity, "opportunity__account", ("subject", "notes")),
    (CriterionTick, "opportunity__account", ("note",)),
    (StageChange, "opportunity__account", ("reason",)),
    (FieldChange, "opportunity__account", ("old_value", "new_value")),
    (DeadlineExtension, "opportunity__account", ("reason",)),
    (PurchaseOrder, "opportunity__account", ("review_note", "document_name")),
    (ClosePlanStep, "plan__opportunity__account", ("title",)),
    (ClosePlanEvent, "plan__opportunity__account", ("detail",)),
    (OfferLine, "offer__opportunity__account", ("description",)),
)


def erase_contact(contact: Contact, *, by: User | None, reason: str) -> ContactErasure:
    """Erase a contact on request: their own fields (crm's `Contact.erase`) and every
    text about their account's deals that named them, in one transaction."""
    return contact.erase(by=by, reason=reason, scrub_elsewhere=scrub_deal_texts)


def scrub_deal_texts(contact: Contact, scrub: Scrubber) -> None:
    """The deals' side of an erasure, inside its transaction. An opportunity whose own
    text changed gets a new version, so a form opened before the erasure cannot save the
    name back (it meets a conflict)."""
    for model, to_account, fields in TEXTS:
        changed = scrub.rewrite(model.objects.filter(**{to_account: contact.account_id}),
                                fields)
        if model is Opportunity and changed:
            Opportunity.objects.filter(pk__in=changed).update(version=F("version") + 1)


def when(value) -> str | None:
    return value.isoformat() if value else None


def contact_record(contact: Contact, opportunities: QuerySet[Opportunity]) -> dict[str, Any]:
    """Everything stored about `contact` within `opportunities` (start them from
    `visible_to(user)`), as plain data: the contact page shows it, the export is it."""
    seen = opportunities.filter(account_id=contact.account_id)
    ids = set(seen.values_list("pk", flat=True))
    names = dict(seen.values_list("pk", "name"))

    def deal(pk: int) -> dict:
        return {"id": pk, "name": names.get(pk, "")}

    scrub = Scrubber.for_contact(contact, "") if not contact.is_erased else None
    account = contact.account
    return {
        "contact": {
            "id": contact.pk, "first_name": contact.first_name,
            "last_name": contact.last_name, "title": contact.title, "email": contact.email,
            "phone": contact.phone, "archived_at": when(contact.archived_at),
            "erased_at": when(contact.erased_at),
        },
        "account": {"id": account.pk, "name": account.name, "website": account.website,
                    "industry": account.industry},
        "champion_of": [
            {"opportunity": deal(o.pk), "confirmed_at": when(o.champion_confirmed_at)}
            for o in seen.filter(champion=contact).order_by("pk")
        ],
        "committee_memberships": [
            {"opportunity": deal(m.opportunity_id), "added_at": when(m.added_at),
             "preferred_vendor_confirmed_on": when(m.confirmed_on),
             "removed_at": when(m.removed_at)}
            for m in CommitteeMember.objects.filter(contact=contact, opportunity_id__in=ids)
            .order_by("added_at", "pk")
        ],
        "activities": [
            {"opportunity": deal(a.opportunity_id), "kind": a.kind, "status": a.status,
             "at": when(a.at), "minutes": a.minutes, "subject": a.subject, "notes": a.notes}
            for a in Activity.objects.filter(contacts=contact, opportunity_id__in=ids)
            .order_by("at", "pk")
        ],
        "close_plans": close_plan_references(contact, ids, deal),
        "history": history_mentions(contact, ids, deal, scrub),
        "erasures": [
            {"erased_at": when(e.erased_at), "erased_by": str(e.erased_by or ""),
             "reason": e.reason}
            for e in contact.erasures.select_related("erased_by").order_by("erased_at")
        ],
    }


def close_plan_references(contact: Contact, ids: set[int], deal) -> dict[str, list]:
    return {
        "accepted_for_the_customer": [
            {"opportunity": deal(p.opportunity_id),
             "accepted_at": when(p.customer_accepted_at)}
            for p in ClosePlan.objects.filter(customer_accepted_by=contact,
                                              opportunity_id__in=ids).order_by("pk")
        ],
        "steps_owned": [
            {"opportunity": deal(s.plan.opportunity_id), "step": s.title,
             "due": when(s.due_date), "status": s.status, "removed_at": when(s.removed_at)}
            for s in ClosePlanStep.objects.filter(owner_contact=contact,
                                                  plan__opportunity_id__in=ids)
            .select_related("plan").order_by("due_date", "pk")
        ],
        "share_links": [
            {"opportunity": deal(link.plan.opportunity_id), "created_at": when(link.created_at),
             "expires_at": when(link.expires_at), "revoked_at": when(link.revoked_at),
             "last_used_at": when(link.last_used_at)}
            for link in ShareLink.objects.filter(contact=contact, plan__opportunity_id__in=ids)
            .select_related("plan").order_by("created_at", "pk")
        ],
        "events": [
            {"opportunity": deal(e.plan.opportunity_id), "at": when(e.at), "what": e.kind,
             "detail": e.detail}
            for e in ClosePlanEvent.objects.filter(
                Q(by_contact=contact) | Q(via_link__contact=contact),
                plan__opportunity_id__in=ids,
            ).select_related("plan").order_by("at", "pk")
        ],
    }


def history_mentions(contact: Contact, ids: set[int], deal,
                     scrub: Scrubber | None) -> list[dict]:
    """History rows about the contact: champion changes (stored as "id:name"), and stage
    changes and ticks whose text names them (after an erasure, their label)."""
    prefix = f"{contact.pk}:"
    label = contact.erased_label()
    named = Q(old_value__startswith=prefix) | Q(new_value__startswith=prefix)
    rows = [
        {"opportunity": deal(c.opportunity_id), "at": when(c.changed_at),
         "kind": "field", "field": c.field, "old": c.old_value, "new": c.new_value,
         "text": (c.new_value or c.old_value).partition(":")[2]}
        for c in FieldChange.objects.filter(named, field="champion", opportunity_id__in=ids)
    ]

    def mentioned(text: str) -> bool:
        return label in text if scrub is None else scrub.mentions(text)

    for change in StageChange.objects.filter(opportunity_id__in=ids).exclude(reason=""):
        if mentioned(change.reason):
            rows.append({"opportunity": deal(change.opportunity_id),
                         "at": when(change.changed_at), "kind": "stage",
                         "from": change.from_stage, "to": change.to_stage,
                         "reason": change.reason, "text": change.reason})
    for tick in CriterionTick.objects.filter(opportunity_id__in=ids).exclude(note=""):
        if mentioned(tick.note):
            rows.append({"opportunity": deal(tick.opportunity_id), "at": when(tick.ticked_at),
                         "kind": "tick", "criterion": tick.criterion, "note": tick.note,
                         "text": tick.note})
    return sorted(rows, key=lambda row: row["at"] or "")
