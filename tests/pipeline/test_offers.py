"""The offer: lines that add up to the amount, edited while negotiating, frozen as agreed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import FieldChange, InvalidChange, Opportunity, Via
from pipeline.process import Stage
from tests.factories import OpportunityFactory, RepFactory, advance, satisfy_gate, stored_state

pytestmark = pytest.mark.django_db


def negotiating_with_an_offer() -> Opportunity:
    opportunity = advance(OpportunityFactory(amount=Decimal("50000.00")), Stage.NEGOTIATING)
    start = timezone.localdate()
    opportunity.save_offer(by=opportunity.owner, service_start=start,
                           service_end=start + timedelta(days=364),
                           payment_terms="30 days net")
    opportunity.add_offer_line(by=opportunity.owner, description="Licences",
                               quantity=Decimal(40), list_price=Decimal(1000),
                               discount_percent=Decimal("12.5"))
    return opportunity


def test_the_amount_follows_the_offer_total_and_the_history_says_so():
    opportunity = negotiating_with_an_offer()
    opportunity.add_offer_line(by=opportunity.owner, description="Onboarding",
                               kind="service", quantity=Decimal(3), list_price=Decimal(1500))

    assert opportunity.offer.total() == Decimal("39500.00")  # 35,000 net + 4,500
    assert opportunity.amount == Decimal("39500.00")
    changes = list(FieldChange.objects.filter(opportunity=opportunity, field="amount")
                   .values_list("old_value", "new_value"))
    assert changes == [("50000.00", "35000.00"), ("35000.00", "39500.00")]

    line = opportunity.offer.lines.get(description="Onboarding")
    opportunity.remove_offer_line(line.pk, by=opportunity.owner)
    assert Opportunity.objects.get(pk=opportunity.pk).amount == Decimal("35000.00")
    assert opportunity.offer.lines.count() == 2  # removed, not deleted


def test_leaving_negotiating_freezes_the_offer_and_a_move_back_opens_it_again():
    opportunity = negotiating_with_an_offer()
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.FINALIZING, by=opportunity.owner, via=Via.PAGE)
    assert opportunity.current_offer().is_agreed
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="move it back there"):
        opportunity.add_offer_line(by=opportunity.owner, description="Extra",
                                   quantity=Decimal(1), list_price=Decimal(10))
    assert stored_state(opportunity) == before

    opportunity.move_to(Stage.NEGOTIATING, by=opportunity.owner, via=Via.PAGE,
                        reason="The customer wants a second product")
    assert not opportunity.current_offer().is_agreed
    opportunity.add_offer_line(by=opportunity.owner, description="Extra",
                               quantity=Decimal(1), list_price=Decimal(10))
    assert opportunity.amount == Decimal("35010.00")


def test_a_frozen_offer_says_so_on_its_page_and_offers_no_form(client):
    opportunity = negotiating_with_an_offer()
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.FINALIZING, by=opportunity.owner, via=Via.PAGE)
    client.force_login(opportunity.owner)

    page = client.get(f"/opportunities/{opportunity.pk}/offer/").content.decode()
    refused = client.post(f"/opportunities/{opportunity.pk}/offer/lines/", {
        "kind": "product", "description": "Extra", "quantity": "1", "list_price": "10",
        "discount_percent": "0"})

    assert "Move it back to Negotiating to change it." in page
    assert 'name="description"' not in page
    assert refused.status_code == 400
    assert Opportunity.objects.get(pk=opportunity.pk).amount == Decimal("35000.00")


def test_a_rep_starts_an_offer_and_adds_lines_on_its_page(client):
    opportunity = advance(OpportunityFactory(), Stage.NEGOTIATING)
    client.force_login(opportunity.owner)

    started = client.post(f"/opportunities/{opportunity.pk}/offer/", {
        "service_start": "2027-01-01", "service_end": "2027-12-31",
        "payment_terms": "30 days net", "terms": "ours", "version": opportunity.version})
    added = client.post(f"/opportunities/{opportunity.pk}/offer/lines/", {
        "kind": "product", "description": "Licences", "quantity": "10",
        "list_price": "2500", "discount_percent": "10"})
    bad = client.post(f"/opportunities/{opportunity.pk}/offer/lines/", {
        "kind": "product", "description": "Free", "quantity": "0", "list_price": "-1",
        "discount_percent": "120"})

    assert (started.status_code, added.status_code, bad.status_code) == (302, 302, 400)
    assert Opportunity.objects.get(pk=opportunity.pk).amount == Decimal("22500.00")
    page = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert "Licences" in page and "22,500.00" in page


def test_a_colleague_cannot_change_the_offer(client):
    opportunity = negotiating_with_an_offer()
    client.force_login(RepFactory(team=opportunity.owner.team))
    before = stored_state(opportunity)

    response = client.post(f"/opportunities/{opportunity.pk}/offer/lines/", {
        "kind": "product", "description": "Extra", "quantity": "1", "list_price": "10",
        "discount_percent": "0"})

    assert response.status_code == 403
    assert stored_state(opportunity) == before


def test_a_service_cannot_end_before_it_starts(client):
    opportunity = advance(OpportunityFactory(), Stage.NEGOTIATING)
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/offer/", {
        "service_start": "2027-12-31", "service_end": "2027-01-01",
        "payment_terms": "30 days net", "terms": "ours"})
    assert response.status_code == 400
    assert "The service cannot end before it starts." in response.content.decode()
    assert opportunity.current_offer() is None
