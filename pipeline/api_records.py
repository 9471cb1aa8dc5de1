"""The API's records around an opportunity: its activities (read and logged), its close
plan, its offer and its purchase orders (read). Reached through the opportunity, so what
a user may see of them is what they may see of it."""


from django.utils import timezone
from django.utils.translation import gettext
from ninja import Router, Status
from ninja.pagination import paginate

from crm.api import Invalid, Missing, Page, Refusal
from crm.models import Contact
from pipeline.api import visible
from pipeline.api_schemas import (
    ActivityIn,
    ActivityOut,
    ClosePlanOut,
    OfferOut,
    PurchaseOrderOut,
)

router = Router(tags=["activities, close plans, offers and orders"])


class ActivityRow(ActivityOut):
    @staticmethod
    def resolve_contacts(activity) -> list[int]:
        return [contact.pk for contact in activity.contacts.all()]


@router.get("/opportunities/{int:opportunity_id}/activities", response=list[ActivityRow],
            summary="An opportunity's calls, meetings and e-mails")
@paginate(Page)
def activity_list(request, opportunity_id: int):
    return visible(request, opportunity_id).activities.prefetch_related("contacts")


@router.post("/opportunities/{int:opportunity_id}/activities",
             response={201: ActivityRow, 400: Refusal, 403: Refusal},
             summary="Log a call, meeting or e-mail: done, or planned ahead")
def activity_log(request, opportunity_id: int, payload: ActivityIn):
    opportunity = visible(request, opportunity_id)
    contacts = list(Contact.objects.filter(pk__in=payload.contacts))
    if len(contacts) != len(set(payload.contacts)):
        raise Invalid({"contacts": [gettext("There is no such contact.")]})
    at = payload.at
    if timezone.is_naive(at):
        at = timezone.make_aware(at)
    activity = opportunity.log_activity(
        by=request.user, kind=payload.kind, at=at, subject=payload.subject,
        notes=payload.notes, contacts=contacts, done=payload.done, minutes=payload.minutes)
    return Status(201, activity)


@router.post("/opportunities/{int:opportunity_id}/activities/{int:activity_id}/done",
             response={200: ActivityRow, 400: Refusal, 403: Refusal},
             summary="Mark a planned activity done")
def activity_done(request, opportunity_id: int, activity_id: int):
    return visible(request, opportunity_id).complete_activity(activity_id, by=request.user)


@router.post("/opportunities/{int:opportunity_id}/activities/{int:activity_id}/cancel",
             response={200: ActivityRow, 400: Refusal, 403: Refusal},
             summary="Cancel a planned activity")
def activity_cancel(request, opportunity_id: int, activity_id: int):
    return visible(request, opportunity_id).cancel_activity(activity_id, by=request.user)


class ClosePlanRow(ClosePlanOut):
    @staticmethod
    def resolve_steps(plan) -> list:
        return plan.current_steps()

    @staticmethod
    def resolve_links(plan) -> list:
        return list(plan.links.all())


@router.get("/opportunities/{int:opportunity_id}/close-plan", response=ClosePlanRow,
            summary="The close plan agreed with the customer, with its current steps")
def close_plan(request, opportunity_id: int):
    plan = visible(request, opportunity_id).current_close_plan()
    if plan is None:
        raise Missing(gettext("This opportunity has no close plan yet."))
    return plan


class OfferRow(OfferOut):
    @staticmethod
    def resolve_total(offer):
        return offer.total()

    @staticmethod
    def resolve_lines(offer) -> list:
        return offer.current_lines()


@router.get("/opportunities/{int:opportunity_id}/offer", response=OfferRow,
            summary="The offer, its lines and total")
def offer(request, opportunity_id: int):
    found = visible(request, opportunity_id).current_offer()
    if found is None:
        raise Missing(gettext("This opportunity has no offer yet."))
    return found


@router.get("/opportunities/{int:opportunity_id}/purchase-orders",
            response=list[PurchaseOrderOut], summary="Purchase orders recorded, newest first")
@paginate(Page, ordering=("-pk",))
def purchase_orders(request, opportunity_id: int):
    return visible(request, opportunity_id).purchase_orders.all()
