"""The API's close plan, our side of it: its target signature date, its steps and our
acceptance, through the plan page's form and model methods. The customer's acceptance
stays on the share link the rep sends them (pipeline/plan_views.py).

The operations join the records' router, where the plan is read: one path, one route."""


from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from ninja import Header, Status

from crm.api import Invalid, Missing, Refusal, cleaned
from pipeline.api import etag, expected_version, visible
from pipeline.api_records import ClosePlanRow, router
from pipeline.api_schemas import (
    ClosePlanIn,
    PlanStepIn,
    PlanStepPatch,
    ShareLinkIn,
    ShareLinkMade,
)
from pipeline.forms import ShareLinkForm
from pipeline.models import Opportunity, StepStatus
from pipeline.plan_views import step_form

PLAN_CHANGED = {200: ClosePlanRow, 400: Refusal, 403: Refusal, 412: Refusal}


def plan_answer(opportunity: Opportunity, response: HttpResponse):
    """The plan as it now stands; the ETag is the opportunity's version."""
    opportunity.reload()
    response["ETag"] = etag(opportunity)
    return opportunity.current_close_plan()


def owner_choice(owner_user: int | None, owner_contact: int | None) -> str:
    """The plan form's owner ("user:3", "contact:7") from the API's two fields."""
    if (owner_user is None) == (owner_contact is None):
        raise Invalid({"owner_user": [gettext("Name one owner: someone of ours or a contact "
                                           "of the account.")]})
    return f"user:{owner_user}" if owner_user is not None else f"contact:{owner_contact}"


def checked_step(opportunity: Opportunity, data: dict) -> tuple[dict, dict]:
    """The step's values as the plan page's form cleans them, and its owners."""
    form = step_form(opportunity, {
        **data, "material": {True: "yes", False: "no"}.get(data.get("material"), "")})
    return cleaned(form), form.owners()


@router.put("/opportunities/{int:opportunity_id}/close-plan", response=PLAN_CHANGED,
            summary="Set the plan's target signature date (making the plan)")
def close_plan_save(request, opportunity_id: int, payload: ClosePlanIn,
                    response: HttpResponse,
                    if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    opportunity.save_close_plan(by=request.user,
                                target_signature_date=payload.target_signature_date,
                                expected_version=expected_version(if_match))
    return plan_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/close-plan/steps",
             response={201: ClosePlanRow, 400: Refusal, 403: Refusal, 412: Refusal},
             summary="Add a step, owned by someone of ours or by a contact")
def plan_step_add(request, opportunity_id: int, payload: PlanStepIn, response: HttpResponse,
                  if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    data, owners = checked_step(opportunity, {
        **payload.dict(), "owner": owner_choice(payload.owner_user, payload.owner_contact)})
    opportunity.add_plan_step(by=request.user, title=data["title"], due_date=data["due_date"],
                              expected_version=version,
                              material=data["material"] is not False, **owners)
    return Status(201, plan_answer(opportunity, response))


@router.patch("/opportunities/{int:opportunity_id}/close-plan/steps/{int:step_id}",
              response=PLAN_CHANGED,
              summary="Change a step: its title, due date, owner or progress")
def plan_step_change(request, opportunity_id: int, step_id: int, payload: PlanStepPatch,
                     response: HttpResponse,
                     if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    plan = opportunity.current_close_plan()
    step = {step.pk: step for step in plan.current_steps()}.get(step_id) if plan else None
    if step is None:
        raise Missing(gettext("That step is not on the plan."))
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    if "owner_user" in changes or "owner_contact" in changes:
        owner = owner_choice(changes.get("owner_user"), changes.get("owner_contact"))
    else:
        owner = (f"user:{step.owner_user_id}" if step.owner_user_id
                 else f"contact:{step.owner_contact_id}")
    data, owners = checked_step(opportunity, {
        "title": step.title, "due_date": step.due_date, "status": step.status,
        **changes, "material": payload.material, "owner": owner})
    opportunity.change_plan_step(
        step_id, by=request.user, material=data["material"], expected_version=version,
        title=data["title"], due_date=data["due_date"], status=StepStatus(data["status"]),
        **owners)
    return plan_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/close-plan/steps/{int:step_id}/remove",
             response=PLAN_CHANGED, summary="Take a step off the plan (kept in its history)")
def plan_step_remove(request, opportunity_id: int, step_id: int, response: HttpResponse,
                     if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    opportunity.remove_plan_step(step_id, by=request.user,
                                 expected_version=expected_version(if_match))
    return plan_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/close-plan/accept", response=PLAN_CHANGED,
             summary="Accept the plan as it stands, for our side")
def plan_accept(request, opportunity_id: int, response: HttpResponse,
                if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    opportunity.accept_close_plan(by=request.user, expected_version=expected_version(if_match))
    return plan_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/close-plan/links",
             response={201: ShareLinkMade, 400: Refusal, 403: Refusal},
             summary="Make a link that shows the plan to a contact, who accepts it there",
             description="The address is in this answer only; send it to the contact.")
def plan_link_create(request, opportunity_id: int, payload: ShareLinkIn):
    opportunity = visible(request, opportunity_id)
    data = cleaned(ShareLinkForm(payload.dict(), account=opportunity.account))
    link, token = opportunity.share_close_plan(data["contact"], by=request.user,
                                               days=data["days"])
    link.address = request.build_absolute_uri(reverse("pipeline:shared_plan", args=[token]))
    return Status(201, link)


@router.post("/opportunities/{int:opportunity_id}/close-plan/links/{int:link_id}/revoke",
             response=PLAN_CHANGED, summary="Stop a link from working")
def plan_link_revoke(request, opportunity_id: int, link_id: int, response: HttpResponse):
    opportunity = visible(request, opportunity_id)
    opportunity.revoke_plan_link(link_id, by=request.user)
    return plan_answer(opportunity, response)
