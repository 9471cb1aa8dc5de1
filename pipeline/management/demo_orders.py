"""Demo close plans, offers, purchase orders and hand-off tasks that fit each
opportunity's stage (for a dead one, the stage it died in).

Run by `seed_demo` once the opportunities are written: a deal that passed Confirming has a
close plan both sides accepted (some of its later steps overdue), and half of those in
Confirming have one in the works; from Negotiating on a deal has an offer whose lines add
up to its amount (agreed once it left Negotiating); half of those in Finalizing, and every
pending and closed one, have a purchase order; a third of the pending orders differ from
their offer for sales ops to find; closed deals were approved and have their hand-off
tasks, the older ones done. Written in bulk, like the rest of the demo data: stack-notes
allow that for seed code only.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone

from crm.models import Contact
from pipeline.management.bulk_rows import BATCH_SIZE
from pipeline.models import (
    ClosePlan,
    ClosePlanStep,
    HandoffKind,
    HandoffTask,
    LineKind,
    Offer,
    OfferLine,
    Opportunity,
    Outcome,
    PurchaseOrder,
    StageChange,
    StepStatus,
    Terms,
)
from pipeline.models.orders import document_storage
from pipeline.process import Stage

DEMO_DOCUMENT = "demo/purchase-order.pdf"
# A one-page PDF that says what it is.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 52>>stream\nBT /F1 24 Tf 72 760 Td (Purchase order - demo) Tj ET\n"
    b"endstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
WITH_OFFER = [Stage.NEGOTIATING, Stage.FINALIZING, Stage.PENDING, Stage.CLOSED]
AGREED = {Stage.FINALIZING, Stage.PENDING, Stage.CLOSED}
HANDOFFS_DONE_AFTER = timedelta(days=14)


def create_orders(rng: random.Random, sales_ops_id: int) -> dict[str, int]:
    """Plans, offers, orders and hand-offs for the demo opportunities; returns the row
    counts."""
    ensure_demo_document()
    now = timezone.now()
    # Those of this run: a second run adds opportunities and leaves the others alone.
    reached = reached_stages(Opportunity.objects.filter(
        close_plan__isnull=True, offer__isnull=True, purchase_orders__isnull=True))
    plans = create_close_plans(rng, reached)
    rows = [row[:7] for row in reached if row[1] in WITH_OFFER]
    offers, lines_of = [], {}
    for pk, stage, amount, _currency, close_date, entered, _owner in rows:
        start = close_date + timedelta(days=1)
        offers.append(Offer(
            opportunity_id=pk, service_start=start, service_end=start + timedelta(days=364),
            payment_terms="30 days net", terms=Terms.OURS, changed_at=entered,
            agreed_at=entered if stage in AGREED else None,
        ))
        lines_of[pk] = offer_lines(amount, entered)
    Offer.objects.bulk_create(offers, batch_size=BATCH_SIZE)
    offer_ids = dict(Offer.objects.filter(opportunity_id__in=lines_of)
                     .values_list("opportunity_id", "pk"))
    lines = []
    for pk, offer_lines_of_pk in lines_of.items():
        for line in offer_lines_of_pk:
            line.offer_id = offer_ids[pk]
            lines.append(line)
    OfferLine.objects.bulk_create(lines, batch_size=BATCH_SIZE)

    ordered = [row for row in rows if row[1] in (Stage.PENDING, Stage.CLOSED)
               or (row[1] == Stage.FINALIZING and rng.random() < 0.5)]
    orders, defects = [], {}
    for pk, stage, amount, currency, close_date, entered, owner in ordered:
        start = close_date + timedelta(days=1)
        order = PurchaseOrder(
            opportunity_id=pk, number=f"PO-{entered:%Y}-{pk:05d}", amount=amount,
            currency=currency, document=DEMO_DOCUMENT, document_name="purchase-order.pdf",
            document_type="pdf", terms=Terms.OURS, service_start=start,
            service_end=start + timedelta(days=364), recorded_by_id=owner,
            recorded_at=entered - timedelta(hours=2) if stage != Stage.FINALIZING else entered,
        )
        if stage == Stage.CLOSED:
            order.outcome, order.reviewed_at, order.reviewed_by_id = (
                Outcome.APPROVED, entered, sales_ops_id)
        elif stage == Stage.PENDING and rng.random() < 0.35:
            defects[pk] = rng.choice(["amount", "terms", "period", "line"])
            spoil(order, defects[pk])
        orders.append(order)
    PurchaseOrder.objects.bulk_create(orders, batch_size=BATCH_SIZE)

    order_ids = dict(PurchaseOrder.objects.filter(opportunity_id__in=[row[0] for row in ordered])
                     .values_list("opportunity_id", "pk"))
    line_ids: dict[int, list[int]] = {}
    for offer_pk, line_pk in OfferLine.objects.filter(
            offer__opportunity_id__in=order_ids).values_list("offer__opportunity_id", "pk"):
        line_ids.setdefault(offer_pk, []).append(line_pk)
    Covered = PurchaseOrder.covered_lines.through
    covered = [
        Covered(purchaseorder_id=order_ids[pk], offerline_id=line_pk)
        for pk, ids in line_ids.items()
        for line_pk in (ids[:-1] if defects.get(pk) == "line" and len(ids) > 1 else ids)
    ]
    Covered.objects.bulk_create(covered, batch_size=BATCH_SIZE)

    tasks = [
        HandoffTask(opportunity_id=pk, kind=kind, created_at=entered,
                    done_at=entered + timedelta(days=rng.randint(1, 10))
                    if now - entered > HANDOFFS_DONE_AFTER else None,
                    done_by_id=sales_ops_id if now - entered > HANDOFFS_DONE_AFTER else None)
        for pk, stage, _amount, _currency, _close, entered, _owner in rows
        if stage == Stage.CLOSED
        for kind in HandoffKind.values
    ]
    HandoffTask.objects.bulk_create(tasks, batch_size=BATCH_SIZE)
    return {"close_plans": plans, "offers": len(offers), "purchase_orders": len(orders),
            "handoff_tasks": len(tasks)}


def reached_stages(opportunities) -> list[tuple]:
    """(pk, the stage reached, amount, currency, close date, entered, owner, account) of
    each: its stage, or for a dead one the stage it died in."""
    rows = list(opportunities.values_list(
        "pk", "stage", "amount", "currency", "expected_close_date", "stage_entered_at",
        "owner_id", "account_id").order_by("pk"))
    died_in = dict(
        StageChange.objects.filter(opportunity__in=[row[0] for row in rows
                                                    if row[1] == Stage.DEAD],
                                   to_stage=Stage.DEAD)
        .order_by("opportunity_id", "changed_at", "pk")
        .values_list("opportunity_id", "from_stage"))  # the last death wins
    return [(pk, Stage(died_in.get(pk, stage)), *rest) for pk, stage, *rest in rows]


PLAN_STEPS = [  # title, on the customer's side, days before the target signature date
    ("Security questionnaire answered", False, 45),
    ("Legal review of the contract", True, 25),
    ("Order signed by the CFO", True, 5),
    ("Kick-off meeting with the project team", False, -14),
]


def create_close_plans(rng: random.Random, reached: list[tuple]) -> int:
    """Accepted plans for the deals that passed Confirming, plans in the works for half of
    those in it."""
    later = {Stage.NEGOTIATING, Stage.FINALIZING, Stage.PENDING, Stage.CLOSED}
    rows = [row for row in reached
            if row[1] in later or (row[1] == Stage.CONFIRMING and rng.random() < 0.5)]
    contacts = dict(Contact.objects.filter(account_id__in={row[7] for row in rows})
                    .order_by("-pk").values_list("account_id", "pk"))
    plans = []
    for pk, stage, _amount, _currency, close_date, entered, owner, account in rows:
        accepted = stage in later
        plans.append(ClosePlan(
            opportunity_id=pk, target_signature_date=close_date,
            rep_accepted_at=entered if accepted else None,
            rep_accepted_by_id=owner if accepted else None,
            customer_accepted_at=entered if accepted else None,
            customer_accepted_by_id=contacts[account] if accepted else None,
        ))
    ClosePlan.objects.bulk_create(plans, batch_size=BATCH_SIZE)
    plan_ids = dict(ClosePlan.objects.filter(opportunity_id__in=[row[0] for row in rows])
                    .values_list("opportunity_id", "pk"))
    today = timezone.localdate()
    steps = []
    for pk, stage, _amount, _currency, close_date, _entered, owner, account in rows:
        for position, (title, customers, days_before) in enumerate(PLAN_STEPS, start=1):
            due = close_date - timedelta(days=days_before)
            # Done when due long enough ago, sometimes late: the card marks what is overdue.
            done = stage == Stage.CLOSED or (due < today and rng.random() < 0.8)
            steps.append(ClosePlanStep(
                plan_id=plan_ids[pk], position=position, title=title, due_date=due,
                owner_contact_id=contacts[account] if customers else None,
                owner_user_id=None if customers else owner,
                status=StepStatus.DONE if done else StepStatus.NOT_STARTED,
                done_on=min(due, today) if done else None))
    ClosePlanStep.objects.bulk_create(steps, batch_size=BATCH_SIZE)
    return len(plans)


def offer_lines(amount: Decimal, entered) -> list[OfferLine]:
    """Licences and, for larger deals, services, adding up to the amount to the cent."""
    if amount < 20_000:
        return [OfferLine(kind=LineKind.PRODUCT, description="Licences", quantity=1,
                          list_price=amount, added_at=entered)]
    licences = (amount * Decimal("0.8")).quantize(Decimal("1"))
    return [
        OfferLine(kind=LineKind.PRODUCT, description="Licences", quantity=1,
                  list_price=licences, added_at=entered),
        OfferLine(kind=LineKind.SERVICE, description="Onboarding and training", quantity=1,
                  list_price=amount - licences, added_at=entered),
    ]


def spoil(order: PurchaseOrder, defect: str) -> None:
    """The faults process.md lists, one per spoiled order."""
    if defect == "amount":
        order.amount = (order.amount * Decimal("1.05")).quantize(Decimal("0.01"))
    elif defect == "terms":
        order.terms = Terms.CUSTOMER
    elif defect == "period":
        order.service_end -= timedelta(days=92)


def ensure_demo_document() -> None:
    storage = document_storage()
    if not storage.exists(DEMO_DOCUMENT):
        storage.save(DEMO_DOCUMENT, ContentFile(DEMO_PDF))

