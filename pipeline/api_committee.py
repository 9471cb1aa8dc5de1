"""The API's champion and decision committee: name or withdraw the champion, add and
remove committee members, record a member's preferred-vendor confirmation. What a script
needs to meet the gates that ask for them (validating.champion_confirmed,
validating.committee_identified, confirming.committee_preferred_vendor), through the
model methods the opportunity page calls, with their permissions and If-Match."""


from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from ninja import Header, Router

from crm.api import Invalid, Refusal
from crm.models import Contact
from pipeline.api import answer, expected_version, visible
from pipeline.api_schemas import ChampionIn, CommitteeIn, OpportunityDetail, PreferredVendorIn
from pipeline.models import Opportunity, Via

router = Router(tags=["champion and committee"])

CHANGED = {200: OpportunityDetail, 400: Refusal, 403: Refusal, 412: Refusal}


def chosen_contact(opportunity: Opportunity, contact_id: int) -> Contact:
    """A current contact of the opportunity's account, as the page's choice offers them."""
    contact = opportunity.account.contacts.filter(archived_at__isnull=True,
                                                  pk=contact_id).first()
    if contact is None:
        raise Invalid({"contact": [gettext("There is no such contact.")]})
    return contact


def member_contact(opportunity: Opportunity, contact_id: int) -> Contact:
    return get_object_or_404(opportunity.account.contacts, pk=contact_id)


@router.put("/opportunities/{int:opportunity_id}/champion", response=CHANGED,
            summary="Name the champion (or withdraw them with null)")
def champion_name(request, opportunity_id: int, payload: ChampionIn, response: HttpResponse,
                  if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    contact = None if payload.contact is None else chosen_contact(opportunity,
                                                                  payload.contact)
    opportunity.name_champion(contact, by=request.user, confirmed=payload.confirmed,
                              expected_version=version, via=Via.API)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/committee", response=CHANGED,
             summary="Add a contact of the account to the decision committee")
def committee_member_add(request, opportunity_id: int, payload: CommitteeIn,
                         response: HttpResponse,
                         if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.add_committee_member(chosen_contact(opportunity, payload.contact),
                                     by=request.user, expected_version=version)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/committee/{int:contact_id}/preferred-vendor",
             response=CHANGED,
             summary="Record that a committee member confirmed us as their preferred vendor")
def committee_member_confirm(request, opportunity_id: int, contact_id: int,
                             payload: PreferredVendorIn, response: HttpResponse,
                             if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.record_preferred_vendor(member_contact(opportunity, contact_id),
                                        by=request.user, on=payload.on,
                                        expected_version=version)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/committee/{int:contact_id}/remove",
             response=CHANGED,
             summary="Take a member off the committee (kept in the history)")
def committee_member_remove(request, opportunity_id: int, contact_id: int,
                            response: HttpResponse,
                            if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.remove_committee_member(member_contact(opportunity, contact_id),
                                        by=request.user, expected_version=version)
    return answer(opportunity_id, response)
