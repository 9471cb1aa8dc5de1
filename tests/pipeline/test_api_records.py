"""Through the API a script meets the gates that ask for a champion, a committee, an
offer and a purchase order, and sales ops review the order: as on the pages, for whom the
pages let do it."""


from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from pipeline.models import Outcome, ReviewCheck, Via
from pipeline.process import Stage
from tests.api_client import ApiClient
from tests.factories import (
    PDF,
    ContactFactory,
    OpportunityFactory,
    advance,
    make_cast,
    satisfy_gate,
)


@pytest.fixture
def cast(db):
    return make_cast()


def tag(response) -> dict:
    return {"If-Match": response["ETag"]}


def tick_the_rest(api, url: str, response):
    """Tick every ticked criterion still missing; the last answer, for its ETag."""
    for criterion in response.json()["exit_criteria"]:
        if criterion["kind"] == "ticked" and not criterion["met"]:
            response = api.post(f"{url}/ticks", {"criterion": criterion["key"],
                                                 "note": "On file"}, headers=tag(response))
            assert response.status_code == 200, response.content
    return response


def test_a_rep_names_champion_and_committee_through_the_api_and_moves_on(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)
    champion, member = ContactFactory.create_batch(2, account=opportunity.account)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    refusal = api.post(f"{url}/move", {"stage": "confirming"})
    assert refusal.status_code == 409
    assert {"validating.champion_confirmed", "validating.committee_identified"} <= {
        missing["key"] for missing in refusal.json()["missing"]}

    named = api.put(f"{url}/champion", {"contact": champion.pk},
                    headers=tag(api.get(url)))
    assert named.status_code == 200, named.content
    assert named.json()["champion"] == champion.pk and named.json()["champion_confirmed_at"]
    added = api.post(f"{url}/committee", {"contact": member.pk}, headers=tag(named))
    assert added.status_code == 200, added.content
    assert [m["contact"] for m in added.json()["committee"]] == [member.pk]
    moved = api.post(f"{url}/move", {"stage": "confirming"},
                     headers=tag(tick_the_rest(api, url, added)))
    assert moved.status_code == 200, moved.content

    confirmed = api.post(f"{url}/committee/{member.pk}/preferred-vendor", {},
                         headers=tag(moved))
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["committee"][0]["confirmed_on"] == str(timezone.localdate())
    assert "confirming.committee_preferred_vendor" not in confirmed.json()["missing_criteria"]


def test_a_member_is_removed_and_a_champion_withdrawn_and_both_stay_in_the_record(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)
    contact = ContactFactory(account=opportunity.account)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    api.put(f"{url}/champion", {"contact": contact.pk})
    api.post(f"{url}/committee", {"contact": contact.pk})
    removed = api.post(f"{url}/committee/{contact.pk}/remove")
    assert removed.status_code == 200 and removed.json()["committee"] == []
    withdrawn = api.put(f"{url}/champion", {"contact": None})
    assert withdrawn.status_code == 200 and withdrawn.json()["champion"] is None
    assert opportunity.committee_members.get().removed_at is not None
    assert [change.via for change in opportunity.field_changes.filter(field="champion")] == [
        Via.API, Via.API]
    again = api.post(f"{url}/committee/{contact.pk}/remove")
    assert again.status_code == 400 and again.json()["detail"]


def test_committee_changes_are_refused_to_others_and_for_bad_input(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)
    stranger = ContactFactory()  # of another account
    url = f"/api/opportunities/{opportunity.pk}"
    contact = ContactFactory(account=opportunity.account)
    assert ApiClient(cast.other_manager).post(
        f"{url}/committee", {"contact": contact.pk}).status_code == 404
    assert ApiClient(cast.colleague).post(
        f"{url}/committee", {"contact": contact.pk}).status_code == 403
    assert ApiClient(cast.sales_ops).put(
        f"{url}/champion", {"contact": contact.pk}).status_code == 403
    api = ApiClient(cast.rep)
    foreign = api.put(f"{url}/champion", {"contact": stranger.pk})
    assert foreign.status_code == 400 and set(foreign.json()["errors"]) == {"contact"}
    assert api.post(f"{url}/committee", {"contact": "Ada"}).status_code == 422
    assert api.post(f"{url}/committee/{stranger.pk}/preferred-vendor", {}).status_code == 404
    stale = api.post(f"{url}/committee", {"contact": contact.pk}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    opportunity.refresh_from_db()
    assert opportunity.champion is None and not opportunity.active_committee()


def send_order(api, url: str, *, document=PDF, name="order.pdf", headers=None, **fields):
    body = {"number": "PO-77", "amount": "9000.00", "currency": "EUR", "terms": "ours",
            "service_start": "2030-01-01", "service_end": "2030-12-31", **fields}
    upload = {"document": SimpleUploadedFile(name, document)} if document is not None else {}
    return api.client.post(f"{url}/purchase-orders", {**body, **upload},
                           headers=api.headers(headers))


def test_a_rep_writes_the_offer_records_the_order_and_sales_ops_close_the_deal(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    offer = api.put(f"{url}/offer", {"service_start": "2030-01-01",
                                     "service_end": "2030-12-31",
                                     "payment_terms": "30 days net"})
    assert offer.status_code == 200, offer.content
    line = api.post(f"{url}/offer/lines", {"description": "Licences", "quantity": "9",
                                           "list_price": "1000.00"}, headers=tag(offer))
    assert line.status_code == 201, line.content
    assert line.json()["total"] in ("9000.00", 9000.0)
    extra = api.post(f"{url}/offer/lines", {"description": "Setup", "quantity": "1",
                                            "list_price": "50.00"}, headers=tag(line))
    extra_id = extra.json()["lines"][-1]["id"]
    removed = api.post(f"{url}/offer/lines/{extra_id}/remove", headers=tag(extra))
    assert removed.status_code == 200 and len(removed.json()["lines"]) == 1
    assert {change.via for change in opportunity.field_changes.filter(field="amount")} == {
        Via.API}
    training = api.post(f"{url}/offer/lines", {"description": "Training", "quantity": "1",
                                               "list_price": "0"}, headers=tag(removed))
    covered = [line["id"] for line in training.json()["lines"]]
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.FINALIZING, by=cast.rep, via=Via.PAGE)

    refusal = api.post(f"{url}/move", {"stage": "pending"})
    assert "finalizing.purchase_order_recorded" in {
        missing["key"] for missing in refusal.json()["missing"]}
    order = send_order(api, url, lines=covered, headers=tag(api.get(url)))
    assert order.status_code == 201, order.content
    assert order.json()["number"] == "PO-77" and order.json()["document_name"] == "order.pdf"
    assert set(opportunity.purchase_orders.get().covered_lines.values_list(
        "pk", flat=True)) == set(covered) and len(covered) == 2
    moved = api.post(f"{url}/move", {"stage": "pending"},
                     headers=tag(tick_the_rest(api, url, api.get(url))))
    assert moved.status_code == 200, moved.content

    review = ApiClient(cast.sales_ops)
    assert api.post(f"{url}/purchase-orders/approve",
                    {"confirmed": ReviewCheck.values}).status_code == 403
    halfway = review.post(f"{url}/purchase-orders/approve", {"confirmed": ["terms"]})
    assert halfway.status_code == 400 and "Confirm every check" in halfway.json()["detail"]
    approved = review.post(f"{url}/purchase-orders/approve", {"confirmed": ReviewCheck.values},
                           headers=tag(moved))
    assert approved.status_code == 200, approved.content
    assert approved.json()["stage"] == "closed"
    assert opportunity.purchase_orders.get().outcome == Outcome.APPROVED


def test_sales_ops_reject_an_order_and_the_deal_returns_to_finalizing(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.PENDING)
    review = ApiClient(cast.sales_ops)
    url = f"/api/opportunities/{opportunity.pk}"
    assert review.post(f"{url}/purchase-orders/reject",
                       {"failed": [], "note": "x"}).status_code == 422
    rejected = review.post(f"{url}/purchase-orders/reject",
                           {"failed": ["prices"], "note": "Line 2's discount differs."})
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["stage"] == "finalizing"
    order = opportunity.purchase_orders.get()
    assert (order.outcome, order.failed_checks) == (Outcome.REJECTED, ["prices"])


def test_an_order_is_refused_without_a_fitting_document_out_of_finalizing_or_to_others(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.FINALIZING)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    program = send_order(api, url, document=b"MZ\x90\x00 not an order", name="order.pdf")
    assert program.status_code == 400 and "not a PDF" in program.json()["detail"]
    assert send_order(api, url, document=None).status_code == 422
    backwards = send_order(api, url, service_end="2029-01-01")
    assert backwards.status_code == 400 and "service_end" in backwards.json()["errors"]
    assert send_order(api, url, lines=[987654]).status_code == 400
    assert send_order(ApiClient(cast.colleague), url).status_code == 403
    assert send_order(ApiClient(cast.other_manager), url).status_code == 404
    early = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)
    assert send_order(api, f"/api/opportunities/{early.pk}").status_code == 400
    assert not opportunity.purchase_orders.exists()


def test_an_agreed_offer_cannot_be_changed_and_bad_lines_are_refused(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    no_offer = api.post(f"{url}/offer/lines", {"description": "x", "quantity": "1",
                                               "list_price": "1.00"})
    assert no_offer.status_code == 400 and no_offer.json()["detail"]
    backwards = api.put(f"{url}/offer", {"service_start": "2030-01-01",
                                         "service_end": "2029-01-01", "payment_terms": "x"})
    assert backwards.status_code == 400 and "service_end" in backwards.json()["errors"]
    assert api.post(f"{url}/offer/lines", {"description": "x", "quantity": "0",
                                           "list_price": "1.00"}).status_code == 422
    api.put(f"{url}/offer", {"service_start": "2030-01-01", "service_end": "2030-12-31",
                             "payment_terms": "30 days net"})
    advance(opportunity, Stage.FINALIZING)
    agreed = api.put(f"{url}/offer", {"service_start": "2030-01-01",
                                      "service_end": "2031-12-31", "payment_terms": "x"})
    assert agreed.status_code == 400 and "agreed" in agreed.json()["detail"]
    assert opportunity.offer.service_end.year == 2030


def test_a_rep_writes_and_accepts_the_close_plan_and_the_customer_accepts_on_the_link(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING)
    contact = ContactFactory(account=opportunity.account)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}/close-plan"
    plan = api.put(url, {"target_signature_date": "2030-06-30"})
    assert plan.status_code == 200, plan.content
    no_owner = api.post(f"{url}/steps", {"title": "Sign", "due_date": "2030-05-31"})
    assert no_owner.status_code == 400 and "owner_user" in no_owner.json()["errors"]
    foreign = api.post(f"{url}/steps", {"title": "Sign", "due_date": "2030-05-31",
                                        "owner_contact": ContactFactory().pk})
    assert foreign.status_code == 400 and "owner" in foreign.json()["errors"]
    step = api.post(f"{url}/steps", {"title": "Sign", "due_date": "2030-05-31",
                                     "owner_contact": contact.pk}, headers=tag(plan))
    assert step.status_code == 201, step.content
    extra = api.post(f"{url}/steps", {"title": "Legal review", "due_date": "2030-05-01",
                                      "owner_user": cast.rep.pk}, headers=tag(step))
    step_id, extra_id = (row["id"] for row in extra.json()["steps"])
    removed = api.post(f"{url}/steps/{extra_id}/remove", headers=tag(extra))
    assert removed.status_code == 200 and len(removed.json()["steps"]) == 1
    accepted = api.post(f"{url}/accept", headers=tag(removed))
    assert accepted.status_code == 200 and accepted.json()["rep_accepted_at"]
    spare = api.post(f"{url}/links", {"contact": contact.pk, "days": 7})
    revoked = api.post(f"{url}/links/{spare.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["links"][0]["revoked_at"]
    link = api.post(f"{url}/links", {"contact": contact.pk})
    assert link.status_code == 201, link.content
    address = urlsplit(link.json()["address"]).path
    assert Client().post(f"{address}accept/").status_code == 200  # the customer accepts
    assert api.get(url).json()["is_accepted"] is True
    unsaid = api.patch(f"{url}/steps/{step_id}", {"title": "Order signed by the CFO"})
    assert unsaid.status_code == 400 and "material" in unsaid.json()["detail"]
    corrected = api.patch(f"{url}/steps/{step_id}", {"title": "Order signed by the CFO",
                                                     "material": False})
    assert corrected.status_code == 200 and corrected.json()["is_accepted"] is True
    done = api.patch(f"{url}/steps/{step_id}", {"status": "done"})
    assert done.json()["steps"][0]["done_on"] == str(timezone.localdate())
    assert api.patch(f"{url}/steps/987654", {"status": "done"}).status_code == 404
    assert ApiClient(cast.colleague).post(f"{url}/accept").status_code == 403
    assert api.post(f"{url}/links", {"contact": ContactFactory().pk}).status_code == 400
    assert api.post(f"{url}/links", {"contact": contact.pk, "days": 91}).status_code == 422
    assert ApiClient(cast.other_manager).put(
        url, {"target_signature_date": "2030-06-30"}).status_code == 404
    assert "confirming.close_plan_accepted" not in api.get(
        f"/api/opportunities/{opportunity.pk}").json()["missing_criteria"]
