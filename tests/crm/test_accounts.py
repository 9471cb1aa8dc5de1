"""Reps create accounts and contacts from the app."""

import pytest

from crm.models import Account, Contact
from tests.factories import AccountFactory, RepFactory

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
