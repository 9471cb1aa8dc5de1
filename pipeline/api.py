"""The API's opportunities: read them with their exit criteria, committee and history;
open, change and move them. Every query starts from `visible_to(request.user)` and every
change goes through the model method the pages call, so a token may do exactly what its
user may do on the pages.

Each opportunity carries an ETag from its version. A write with `If-Match` is made only
if the opportunity is still at that version (else 412); without, it is made as asked."""


from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from ninja import Header, Router, Status
from ninja.pagination import paginate

from crm.api import Invalid, Page, Refusal, form_errors, merged
from crm.models import User
from pipeline.api_schemas import (
    GateRefusal,
    HistoryOut,
    MoveIn,
    OpportunityDetail,
    OpportunityIn,
    OpportunityOut,
    OpportunityPatch,
    TickedCriterion,
    TickIn,
)
from pipeline.forms import OpportunityForm
from pipeline.models import Opportunity, Via
from pipeline.process import Stage

router = Router(tags=["opportunities"])


class PreconditionFailed(Exception):
    """An If-Match that names no version of this opportunity: 412."""


def etag(opportunity: Opportunity) -> str:
    return f'"{opportunity.version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header asks for; None when it asks for none (absent, `*`)."""
    if if_match is None or if_match.strip() in ("", "*"):
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 9:
        raise PreconditionFailed(gettext("If-Match names no version of this opportunity; "
                                         "send the ETag you read."))
    return int(value)


def visible(request, opportunity_id: int) -> Opportunity:
    return get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related("account", "owner"),
        pk=opportunity_id)


def answer(opportunity_id: int, response: HttpResponse) -> Opportunity:
    """The opportunity as it now stands, its ETag set on the response. Read without
    `visible_to`: the caller has just found it visible or changed it, and a change may
    take it out of the user's sight (a BDR handing it to an account executive) without
    the change having failed."""
    opportunity = Opportunity.objects.with_checklist().get(pk=opportunity_id)
    response["ETag"] = etag(opportunity)
    return opportunity


@router.get("/opportunities", response=list[OpportunityOut],
            summary="The opportunities you may see")
@paginate(Page)
def opportunity_list(request, stage: Stage | None = None, account: int | None = None,
                     owner: int | None = None):
    found = Opportunity.objects.visible_to(request.user).select_related("account", "owner")
    if stage:
        found = found.filter(stage=stage)
    if account:
        found = found.filter(account_id=account)
    if owner:
        found = found.filter(owner_id=owner)
    return found


@router.post("/opportunities", response={201: OpportunityDetail, 400: Refusal, 403: Refusal},
             summary="Open an opportunity in stage 1")
def opportunity_create(request, payload: OpportunityIn, response: HttpResponse):
    user = request.user
    data = payload.dict()
    owner = user
    if data.pop("owner") not in (None, user.pk):
        owner = User.objects.filter(pk=payload.owner).first()
        if owner is None:
            raise Invalid({"owner": [gettext("There is no such person.")]})
    form = OpportunityForm(data)
    if not form.is_valid():
        raise Invalid(form_errors(form))
    fields = {k: v for k, v in form.cleaned_data.items() if k != "new_account_name"}
    with transaction.atomic():
        opportunity = Opportunity.start(owner=owner, by=user, **fields)
    return Status(201, answer(opportunity.pk, response))


@router.get("/opportunities/{int:opportunity_id}", response=OpportunityDetail,
            summary="One opportunity, with its exit criteria and committee; ETag: its version")
def opportunity_detail(request, opportunity_id: int, response: HttpResponse):
    return answer(visible(request, opportunity_id).pk, response)


@router.patch("/opportunities/{int:opportunity_id}",
              response={200: OpportunityDetail, 400: Refusal, 403: Refusal, 412: Refusal},
              summary="Change an opportunity's fields (not its stage)")
def opportunity_update(request, opportunity_id: int, payload: OpportunityPatch,
                       response: HttpResponse,
                       if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    new_owner = changes.pop("owner", None)
    fields = [name for name in OpportunityForm.Meta.fields if name != "account"]
    form = OpportunityForm(merged(opportunity, fields, changes), instance=opportunity)
    if not form.is_valid():
        raise Invalid(form_errors(form))
    updates = {name: form.cleaned_data[name] for name in changes}
    if new_owner is not None:
        updates["owner"] = User.objects.filter(pk=new_owner).first()
        if updates["owner"] is None:
            raise Invalid({"owner": [gettext("There is no such person.")]})
    opportunity.update_details(by=request.user, via=Via.API, expected_version=version,
                               **updates)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/move",
             response={200: OpportunityDetail, 400: Refusal, 403: Refusal,
                       409: GateRefusal, 412: Refusal},
             summary="Move an opportunity to another stage, through its gates",
             description="A forward move passes every gate on the way or none: a gate that "
                         "does not hold answers 409 with the criteria still missing.")
def opportunity_move(request, opportunity_id: int, payload: MoveIn, response: HttpResponse,
                     if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    handed_to = None
    if payload.account_executive is not None:
        handed_to = User.objects.filter(pk=payload.account_executive).first()
        if handed_to is None:
            raise Invalid({"account_executive": [gettext("There is no such person.")]})
    opportunity.move_to(payload.stage, by=request.user, via=Via.API, reason=payload.reason,
                        expected_version=version, dead_reason=payload.dead_reason or "",
                        account_executive=handed_to)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/ticks",
             response={200: OpportunityDetail, 400: Refusal, 403: Refusal, 412: Refusal},
             summary="Tick an exit criterion with its evidence")
def opportunity_tick(request, opportunity_id: int, payload: TickIn, response: HttpResponse,
                     if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.tick(payload.criterion, by=request.user, note=payload.note,
                     not_required=payload.not_required, expected_version=version)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/ticks/{criterion}/withdraw",
             response={200: OpportunityDetail, 400: Refusal, 403: Refusal, 412: Refusal},
             summary="Withdraw a tick (it stays in the history)")
def opportunity_untick(request, opportunity_id: int, criterion: TickedCriterion,
                       response: HttpResponse,
                       if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.untick(criterion, by=request.user, expected_version=version)
    return answer(opportunity_id, response)


@router.get("/opportunities/{int:opportunity_id}/history", response=HistoryOut,
            summary="Every stage change and tracked field change, oldest first")
def opportunity_history(request, opportunity_id: int):
    opportunity = visible(request, opportunity_id)
    return {
        "stage_changes": list(opportunity.stage_changes.order_by("changed_at", "pk")),
        "field_changes": list(opportunity.field_changes.order_by("changed_at", "pk")),
    }
