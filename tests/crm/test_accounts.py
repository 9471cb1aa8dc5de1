"""Reps create, correct and archive accounts and contacts from the app."""

import html

import pytest

from crm.models import Account, Contact
from pipeline.models import Via
from pipeline.process import DeadReason, Stage
from tests.factories import AccountFactory, ContactFactory, OpportunityFactory, RepFactory

pytestmark = pytest.mark.django_db


def test_a_rep_creates_an_account_and_lands_on_its_page(client):
    client.force_login(RepFactory())
    response = client.post("/accounts/new/", {"name": "Nordbank AG", "industry": "Banking"})
    account = Account.objects.get()
    assert response["Location"] == f"/accounts/{account.pk}/"
    assert "Nordbank AG" in client.get(response["Location"]).content.decode()


def test_an_account_needs_a_name(client):
    client.force_login(RepFactory())
    response = client.post("/accounts/new/", {"name": "", "website": "not a url"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Account.objects.exists()


def test_a_rep_adds_a_contact_to_an_account(client):
    account = AccountFactory()
    client.force_login(RepFactory())
    client.post(f"/accounts/{account.pk}/contacts/new/", {
        "first_name": "Grace", "last_name": "Hopper", "title": "CFO",
        "email": "grace@example.com"})
    contact = Contact.objects.get()
    assert (contact.account, str(contact), contact.title) == (account, "Grace Hopper", "CFO")


def test_a_contact_with_a_bad_email_is_refused_and_keeps_the_input(client):
    account = AccountFactory()
    client.force_login(RepFactory())
    response = client.post(f"/accounts/{account.pk}/contacts/new/", {
        "first_name": "Grace", "last_name": "Hopper", "email": "nope"})
    assert response.status_code == 400
    assert 'value="Grace"' in response.content.decode()
    assert not Contact.objects.exists()


def test_a_rep_corrects_an_account_from_its_page(client):
    account = AccountFactory(name="Nordbank")
    client.force_login(RepFactory())
    assert f'href="/accounts/{account.pk}/edit/"' in client.get(
        f"/accounts/{account.pk}/").content.decode()
    response = client.post(f"/accounts/{account.pk}/edit/", {
        "name": "Nordbank AG", "website": "nordbank.example", "industry": "Banking"})
    assert response["Location"] == f"/accounts/{account.pk}/"
    account.refresh_from_db()
    assert (account.name, account.website) == ("Nordbank AG", "https://nordbank.example")
    page = client.get(response["Location"]).content.decode()
    assert "Account “Nordbank AG” saved." in page
    assert 'href="https://nordbank.example"' in page


def test_an_account_edit_without_a_name_is_refused_and_keeps_the_input(client):
    account = AccountFactory(name="Nordbank", industry="Banking")
    client.force_login(RepFactory())
    response = client.post(f"/accounts/{account.pk}/edit/", {
        "name": "", "industry": "Insurance"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page
    assert 'value="Insurance"' in page
    account.refresh_from_db()
    assert (account.name, account.industry) == ("Nordbank", "Banking")


def test_a_rep_corrects_a_contacts_email(client):
    contact = ContactFactory(first_name="Grace", last_name="Hopper", email="grace@old.example")
    client.force_login(RepFactory())
    response = client.post(f"/contacts/{contact.pk}/edit/", {
        "first_name": "Grace", "last_name": "Hopper", "title": "CFO",
        "email": "grace@new.example", "phone": "+49 30 1234"})
    assert response["Location"] == f"/accounts/{contact.account_id}/"
    page = client.get(response["Location"]).content.decode()
    assert 'href="mailto:grace@new.example"' in page
    assert 'href="tel:+49 30 1234"' in page


def test_a_contact_edit_with_a_bad_email_changes_nothing(client):
    contact = ContactFactory(first_name="Grace", email="grace@old.example")
    client.force_login(RepFactory())
    response = client.post(f"/contacts/{contact.pk}/edit/", {
        "first_name": "Grace", "last_name": "Hopper", "email": "nope"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    contact.refresh_from_db()
    assert contact.email == "grace@old.example"


def test_an_archived_contact_leaves_the_account_page_and_the_champion_picker(client):
    contact = ContactFactory(first_name="Grace", last_name="Hopper")
    opportunity = OpportunityFactory(account=contact.account)
    client.force_login(opportunity.owner)
    assert "Grace Hopper" in client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    response = client.post(f"/contacts/{contact.pk}/archive/")
    assert response["Location"] == f"/accounts/{contact.account_id}/"
    contact.refresh_from_db()
    assert contact.archived_at is not None  # kept, not deleted
    account_page = client.get(f"/accounts/{contact.account_id}/").content.decode()
    assert "Contact Grace Hopper archived." in account_page
    assert f"/contacts/{contact.pk}/edit/" not in account_page
    detail = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert "Grace Hopper" not in detail
    assert client.get(f"/contacts/{contact.pk}/edit/").status_code == 404


def test_the_champion_of_an_open_opportunity_cannot_be_archived(client):
    contact = ContactFactory(first_name="Grace", last_name="Hopper")
    opportunity = OpportunityFactory(account=contact.account, name="Treasury rollout")
    opportunity.name_champion(contact, by=opportunity.owner)
    client.force_login(opportunity.owner)
    response = client.post(f"/contacts/{contact.pk}/archive/")
    assert response.status_code == 409
    assert ("Grace Hopper is still the champion or a committee member of open opportunities: "
            "“Treasury rollout”. Name someone else there first.") in response.content.decode()
    contact.refresh_from_db()
    assert contact.archived_at is None


def test_a_committee_member_of_another_teams_deal_cannot_be_archived_and_its_name_stays_hidden(
        client):
    contact = ContactFactory(first_name="Grace", last_name="Hopper")
    opportunity = OpportunityFactory(account=contact.account, name="Secret expansion")
    opportunity.add_committee_member(contact, by=opportunity.owner)
    client.force_login(RepFactory())  # another team
    response = client.post(f"/contacts/{contact.pk}/archive/")
    assert response.status_code == 409
    page = html.unescape(response.content.decode())
    assert "another team's open opportunity. Ask its owner to name someone else first." in page
    assert "Secret expansion" not in page


def test_a_contact_off_the_committee_or_on_a_dead_deal_can_be_archived(client):
    contact = ContactFactory()
    removed_from = OpportunityFactory(account=contact.account)
    removed_from.add_committee_member(contact, by=removed_from.owner)
    removed_from.remove_committee_member(contact, by=removed_from.owner)
    parked = OpportunityFactory(account=contact.account)
    parked.name_champion(contact, by=parked.owner)
    parked.move_to(Stage.DEAD, by=parked.owner, via=Via.PAGE,
                   reason="Budget frozen", dead_reason=DeadReason.NO_BUDGET)
    client.force_login(parked.owner)
    assert client.post(f"/contacts/{contact.pk}/archive/").status_code == 302
    parked.refresh_from_db()
    assert parked.champion == contact  # the parked deal still says who its champion was


def test_archiving_needs_a_post(client):
    contact = ContactFactory()
    client.force_login(RepFactory())
    assert client.get(f"/contacts/{contact.pk}/archive/").status_code == 405
    contact.refresh_from_db()
    assert contact.archived_at is None


def test_an_archived_contact_can_be_restored_from_the_account_page(client):
    contact = ContactFactory(first_name="Grace", last_name="Hopper")
    client.force_login(RepFactory())
    client.post(f"/contacts/{contact.pk}/archive/")
    page = client.get(f"/accounts/{contact.account_id}/").content.decode()
    assert "1 archived contact" in page
    assert f'action="/contacts/{contact.pk}/restore/"' in page

    response = client.post(f"/contacts/{contact.pk}/restore/")
    assert response["Location"] == f"/accounts/{contact.account_id}/"
    contact.refresh_from_db()
    assert contact.archived_at is None
    page = client.get(f"/accounts/{contact.account_id}/").content.decode()
    assert "Contact Grace Hopper restored." in page
    assert f"/contacts/{contact.pk}/edit/" in page
    assert "archived contact" not in page
