"""The API's offer, purchase orders and sales ops' review: write the offer and its lines,
record the customer's order with its document, approve or reject it. Each goes through
the page's form (the same checks of the input) and the model method the page calls (the
same permissions, stages and If-Match on the opportunity's version).

The order comes as multipart/form-data, its document as a file part: a scanned order of
several megabytes would not fit a JSON body (and base64 would swell it by a third).

The operations join the records' router: a path that reads there (GET …/offer) must be
the same route as the one that writes it, or the first route would answer 405."""


from django.http import HttpResponse
from ninja import File, Form, Header, Status, UploadedFile

from crm.api import Refusal, cleaned
from pipeline.api import answer, etag, expected_version, visible
from pipeline.api_records import OfferRow, router
from pipeline.api_schemas import (
    ApprovalIn,
    OfferIn,
    OfferLineIn,
    OpportunityDetail,
    PurchaseOrderIn,
    PurchaseOrderOut,
    RejectionIn,
)
from pipeline.forms import OfferForm, OfferLineForm, PurchaseOrderForm
from pipeline.models import Opportunity, Via

OFFER_CHANGED = {200: OfferRow, 400: Refusal, 403: Refusal, 412: Refusal}
REVIEWED = {200: OpportunityDetail, 400: Refusal, 403: Refusal, 412: Refusal}


def offer_answer(opportunity: Opportunity, response: HttpResponse):
    """The offer as it now stands; the ETag is the opportunity's version, for the next
    write's If-Match."""
    opportunity.reload()
    response["ETag"] = etag(opportunity)
    return opportunity.current_offer()


@router.put("/opportunities/{int:opportunity_id}/offer", response=OFFER_CHANGED,
            summary="Write the offer's service period and terms (made when there is none)")
def offer_save(request, opportunity_id: int, payload: OfferIn, response: HttpResponse,
               if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    data = cleaned(OfferForm(payload.dict()))
    opportunity.save_offer(by=request.user, service_start=data["service_start"],
                           service_end=data["service_end"],
                           payment_terms=data["payment_terms"], terms=data["terms"],
                           expected_version=version, via=Via.API)
    return offer_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/offer/lines",
             response={201: OfferRow, 400: Refusal, 403: Refusal, 412: Refusal},
             summary="Add a line to the offer; the amount follows the offer's total")
def offer_line_add(request, opportunity_id: int, payload: OfferLineIn,
                   response: HttpResponse,
                   if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    data = cleaned(OfferLineForm(payload.dict()))
    opportunity.add_offer_line(
        by=request.user, kind=data["kind"], description=data["description"],
        quantity=data["quantity"], list_price=data["list_price"],
        discount_percent=data["discount_percent"], expected_version=version, via=Via.API)
    return Status(201, offer_answer(opportunity, response))


@router.post("/opportunities/{int:opportunity_id}/offer/lines/{int:line_id}/remove",
             response=OFFER_CHANGED, summary="Take a line off the offer (kept in the record)")
def offer_line_remove(request, opportunity_id: int, line_id: int, response: HttpResponse,
                      if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.remove_offer_line(line_id, by=request.user, expected_version=version,
                                  via=Via.API)
    return offer_answer(opportunity, response)


@router.post("/opportunities/{int:opportunity_id}/purchase-orders",
             response={201: PurchaseOrderOut, 400: Refusal, 403: Refusal, 412: Refusal},
             summary="Record the customer's purchase order, with its document, at Finalizing",
             description="multipart/form-data: the fields, and the document (PDF, PNG, "
                         "JPEG or Word, at most 10 MB) as the file part `document`.")
def purchase_order_record(request, opportunity_id: int, payload: Form[PurchaseOrderIn],
                          document: File[UploadedFile], response: HttpResponse,
                          if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    offer = opportunity.current_offer()
    form = PurchaseOrderForm(
        {**payload.dict(), "lines": [str(line) for line in payload.lines]},
        {"document": document}, offer_lines=offer.current_lines() if offer else [])
    data = cleaned(form)
    order = opportunity.record_purchase_order(
        by=request.user, number=data["number"], amount=data["amount"],
        currency=data["currency"], document=data["document"], terms=data["terms"],
        service_start=data["service_start"], service_end=data["service_end"],
        lines=data["lines"], expected_version=version)
    response["ETag"] = etag(opportunity)
    return Status(201, order)


@router.post("/opportunities/{int:opportunity_id}/purchase-orders/approve", response=REVIEWED,
             summary="Sales ops: approve the pending order, every check confirmed; the deal "
                     "is Closed")
def purchase_order_approve(request, opportunity_id: int, payload: ApprovalIn,
                           response: HttpResponse,
                           if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.approve_order(by=request.user, confirmed=set(payload.confirmed),
                              expected_version=version)
    return answer(opportunity_id, response)


@router.post("/opportunities/{int:opportunity_id}/purchase-orders/reject", response=REVIEWED,
             summary="Sales ops: reject the pending order with the checks that failed and "
                     "why; the deal returns to Finalizing")
def purchase_order_reject(request, opportunity_id: int, payload: RejectionIn,
                          response: HttpResponse,
                          if_match: str | None = Header(None, alias="If-Match")):
    opportunity = visible(request, opportunity_id)
    version = expected_version(if_match)
    opportunity.reject_order(by=request.user, failed=set(payload.failed), note=payload.note,
                             expected_version=version)
    return answer(opportunity_id, response)
