"""Creating, editing and reading one opportunity from the app (not only the admin)."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import translation

from crm.models import Account
from pipeline.models import FieldChange, Opportunity, Via
from pipeline.process import Stage
from tests.factories import (
    AccountFactory,
    BdrFactory,
    ContactFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    UserFactory,
    advance,
)

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    return {
        "name": "Treasury rollout", "type": "new_business", "source": "webinar",
        "amount": "48000", "currency": "eur", "expected_close_date": "2027-03-31",
        "next_step": "Demo for the CFO", "next_step_date": "2026-12-03", **overrides,
    }


def test_a_rep_creates_an_opportunity_with_a_new_account(client):
    rep = RepFactory()
    client.force_login(rep)
    response = client.post("/opportunities/new/", form_data(new_account_name="Nordbank AG"))
    opportunity = Opportunity.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/opportunities/{opportunity.pk}/"
    assert opportunity.account.name == "Nordbank AG"
    assert (opportunity.owner, opportunity.stage, opportunity.currency) == (
        rep, Stage.IDENTIFYING, "EUR")
    assert opportunity.amount_at_stage_entry == Decimal("48000")


@pytest.mark.parametrize("role", ["sales_ops", "none"])
def test_sales_ops_and_people_without_a_role_cannot_open_opportunities(client, role):
    user = SalesOpsFactory() if role == "sales_ops" else UserFactory()
    account = AccountFactory()
    client.force_login(user)

    form = client.get("/opportunities/new/")
    posted = client.post("/opportunities/new/", form_data(account=account.pk))

    assert (form.status_code, posted.status_code) == (403, 403)
    assert "your role does not" in posted.content.decode()
    assert not Opportunity.objects.exists()
    account_page = client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'href="/opportunities/new/' not in account_page


def test_a_bdr_opens_an_opportunity_of_their_own(client):
    bdr = BdrFactory()
    client.force_login(bdr)
    client.post("/opportunities/new/", form_data(new_account_name="Nordbank AG", owner=99))
    assert Opportunity.objects.get().owner == bdr


def test_a_manager_opens_an_opportunity_for_a_rep_of_their_team_only(client):
    manager = ManagerFactory()
    rep = RepFactory(team=manager.team)
    outsider = RepFactory()
    client.force_login(manager)
    form = client.get("/opportunities/new/").content.decode()
    assert f'<option value="{rep.pk}"' in form
    assert f'<option value="{outsider.pk}"' not in form

    refused = client.post("/opportunities/new/", form_data(new_account_name="Nordbank AG",
                                                           owner=outsider.pk))
    opened = client.post("/opportunities/new/", form_data(new_account_name="Nordbank AG",
                                                          owner=rep.pk))

    assert refused.status_code == 400
    assert opened.status_code == 302
    opportunity = Opportunity.objects.get()
    assert (opportunity.owner, opportunity.changed_by) == (rep, manager)


@override_settings(COMPANY_CURRENCY="CHF")
def test_the_new_opportunity_form_starts_in_the_company_currency_with_the_account_first(
        client):
    client.force_login(RepFactory())
    page = client.get("/opportunities/new/").content.decode()
    assert re.search(r'<input[^>]*name="currency"[^>]*value="CHF"', page)
    fields = re.findall(r'<(?:input|select)[^>]*name="(\w+)"', page)
    assert fields[fields.index("account"):fields.index("account") + 3] == [
        "account", "new_account_name", "name"]


def test_a_rep_creates_an_opportunity_for_an_existing_account(client):
    account = AccountFactory(name="Helvetia Insurance")
    client.force_login(RepFactory())
    client.post("/opportunities/new/", form_data(account=account.pk))
    assert Opportunity.objects.get().account == account
    assert Account.objects.count() == 1


def test_form_errors_stand_next_to_their_fields_and_keep_what_was_typed(client):
    client.force_login(RepFactory())
    response = client.post("/opportunities/new/", form_data(
        amount="-5", currency="E1", new_account_name="Kept Name GmbH"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "The amount cannot be negative." in html
    assert "Use a three-letter currency code" in html
    assert 'value="Kept Name GmbH"' in html and 'value="Demo for the CFO"' in html
    assert not Opportunity.objects.exists()


def test_an_opportunity_needs_an_account(client):
    client.force_login(RepFactory())
    response = client.post("/opportunities/new/", form_data())
    assert response.status_code == 400
    assert "Choose an account or name a new one." in response.content.decode()


def test_editing_the_amount_and_close_date_leaves_history_rows(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", form_data(
        name=opportunity.name, amount="60000", expected_close_date="2027-06-30",
        version=opportunity.version))
    assert response.status_code == 302
    changes = {c.field: (c.old_value, c.new_value, c.changed_by, c.via)
               for c in FieldChange.objects.filter(opportunity=opportunity)}
    assert changes["amount"] == ("50000.00", "60000", opportunity.owner, Via.PAGE)
    assert changes["expected_close_date"][1] == "2027-06-30"
    page = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert "changed amount from 50,000.00 to 60,000.00" in page
    assert "to June 30, 2027" in page


def test_the_history_writes_amounts_and_dates_the_german_way_in_german(client):
    opportunity = OpportunityFactory(amount=Decimal("1234567.50"))
    opportunity.update_details(by=opportunity.owner, amount=Decimal("2000000"),
                               expected_close_date=date(2027, 3, 1))
    client.force_login(opportunity.owner)
    try:
        page = client.get(f"/opportunities/{opportunity.pk}/",
                          headers={"accept-language": "de"}).content.decode()
    finally:
        translation.deactivate()  # LocaleMiddleware leaves German active in this thread
    assert "hat Betrag von 1.234.567,50 auf 2.000.000,00 geändert" in page
    assert "auf 1. März 2027 geändert" in page


def test_editing_a_stale_page_is_refused_and_says_who_changed_it(client):
    opportunity = OpportunityFactory()
    manager = ManagerFactory(team=opportunity.owner.team)
    stale = opportunity.version
    opportunity.update_details(by=manager, next_step="Call the CFO")
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", form_data(
        name=opportunity.name, amount="1", version=stale))
    assert response.status_code == 409
    assert str(manager) in response.content.decode()
    opportunity.refresh_from_db()
    assert opportunity.amount == Decimal("50000.00")


@pytest.mark.parametrize("version", ["abc", "", "1.5", "1e3", "0", ["1", "2"]])
def test_an_edit_with_a_version_that_is_not_one_is_refused_or_ignored_never_an_error(
        client, version):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)

    response = client.post(f"/opportunities/{opportunity.pk}/edit/", form_data(
        name=opportunity.name, amount="70000", version=version))

    stored = Opportunity.objects.get(pk=opportunity.pk)
    if version == "":  # no version at all: saved without the staleness check
        assert response.status_code == 302
        assert stored.amount == Decimal("70000")
    elif version == ["1", "2"]:  # the last one counts, as everywhere in Django
        assert response.status_code == 409
        assert stored.amount == Decimal("50000.00")
    else:
        assert response.status_code == 400
        assert "This page is out of date: reload it and try again." in (
            response.content.decode())
        assert (stored.amount, stored.version) == (Decimal("50000.00"), opportunity.version)


def test_after_a_conflict_saving_again_overwrites_deliberately(client):
    opportunity = OpportunityFactory()
    manager = ManagerFactory(team=opportunity.owner.team)
    stale = opportunity.version
    opportunity.update_details(by=manager, next_step="Call the CFO")
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", form_data(
        name=opportunity.name, amount="1", version=stale))
    assert f'name="version" value="{stale + 1}"' in response.content.decode()

    again = client.post(f"/opportunities/{opportunity.pk}/edit/", form_data(
        name=opportunity.name, amount="1", version=stale + 1))

    assert again.status_code == 302
    assert Opportunity.objects.get(pk=opportunity.pk).amount == Decimal("1")


def test_the_page_shows_criteria_committee_history_and_time_left(client):
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.VALIDATING)
    member = ContactFactory(account=opportunity.account, first_name="Grace", last_name="Hopper")
    opportunity.add_committee_member(member, by=opportunity.owner)
    client.force_login(opportunity.owner)
    html = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert "A budget exists and a clear buying intent is stated" in html  # a passed stage
    assert "The champion committed to involve every decision maker" in html  # current
    assert "evidence on file" in html
    assert "Grace Hopper" in html and "no confirmation yet" in html
    assert "moved it from Discovering Problems, Impacts &amp; Goals to Validating" in html
    assert "0 days in stage of 30" in html


def test_ticking_from_the_page_records_the_evidence(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/tick/", {
        "criterion": "identifying.problem_described", "note": "Call on 3 Dec",
        "version": opportunity.version})
    assert response.status_code == 302
    tick = opportunity.ticks.get()
    assert (tick.note, tick.ticked_by) == ("Call on 3 Dec", opportunity.owner)


def test_a_tick_without_evidence_is_refused_with_a_message(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/tick/", {
        "criterion": "identifying.problem_described", "note": " "})
    assert response.status_code == 400
    assert "Add the evidence" in response.content.decode()
    assert not opportunity.ticks.exists()


def test_a_champion_can_be_added_as_a_new_contact_from_the_page(client):
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.VALIDATING)
    client.force_login(opportunity.owner)
    client.post(f"/opportunities/{opportunity.pk}/champion/", {
        "first_name": "Ada", "last_name": "Lovelace", "version": opportunity.version})
    opportunity.refresh_from_db()
    assert str(opportunity.champion) == "Ada Lovelace"
    assert opportunity.champion.account == opportunity.account
    assert opportunity.champion_confirmed_at is not None


def test_a_contact_of_another_account_cannot_join_the_committee(client):
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.VALIDATING)
    outsider = ContactFactory()
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/committee/add/", {
        "contact": outsider.pk, "version": opportunity.version})
    assert response.status_code == 400
    assert not opportunity.committee_members.exists()


def test_a_manager_grants_an_extension_with_a_reason(client):
    opportunity = OpportunityFactory()
    advance(opportunity, Stage.DISCOVERING)
    manager = ManagerFactory(team=opportunity.owner.team)
    deadline = opportunity.stage_deadline
    client.force_login(manager)
    response = client.post(f"/opportunities/{opportunity.pk}/extend/", {
        "days": 14, "reason": "Customer's board meets in January",
        "version": opportunity.version})
    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert (opportunity.stage_deadline - deadline).days == 14
    assert opportunity.owner.notifications.filter(subject__contains="more time").exists()
