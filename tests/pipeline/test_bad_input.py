"""Input a careless user or an attacker sends: a clear 4xx, and nothing written.

NUL characters, control characters in one-line fields, currencies no total could convert,
and texts longer than any reason needs.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from crm.models import Account, Contact, ExchangeRate
from pipeline.models import (
    TEXT_LENGTH,
    CriterionTick,
    DeadlineExtension,
    InvalidChange,
    Opportunity,
    StageChange,
    Via,
)
from pipeline.process import Stage
from tests.factories import (
    AccountFactory,
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    UserFactory,
    advance,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db

TOO_LONG = "x" * (TEXT_LENGTH + 1)


def new_opportunity(**overrides) -> dict:
    return {"name": "Treasury rollout", "type": "new_business", "source": "webinar",
            "amount": "48000", "currency": "EUR", "expected_close_date": "2027-03-31",
            "new_account_name": "Nordbank AG", **overrides}


# --- NUL characters ---


@pytest.mark.parametrize("path", [
    "/accounts/?q=%00",
    "/board/?q=a%00b",
    "/admin/pipeline/opportunity/?q=%00",
    "/admin/pipeline/opportunity/?stage=%00",
    "/admin/crm/account/?archived_at__isnull=%00",
])
def test_a_nul_character_in_a_search_or_filter_is_a_bad_request(client, path):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get(path)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_a_nul_character_in_a_posted_field_changes_nothing(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    before = stored_state(opportunity)

    response = client.post(f"/opportunities/{opportunity.pk}/tick/", {
        "criterion": "identifying.problem_described", "note": "seen\x00"})

    assert response.status_code == 400
    assert stored_state(opportunity) == before


def test_a_nul_character_in_the_session_cookie_is_a_bad_request(client):
    client.cookies["sessionid"] = "abc\x00def"
    assert client.get("/board/").status_code == 400


# --- one line means one line ---


@pytest.mark.parametrize("name", ["Rollout\r\nBcc: everyone", "Rollout\tphase 2", "a\x1bb"])
def test_an_opportunity_name_with_control_characters_is_refused(client, name):
    client.force_login(RepFactory())
    response = client.post("/opportunities/new/", new_opportunity(name=name))
    assert response.status_code == 400
    assert "Write this on one line" in response.content.decode()
    assert not Opportunity.objects.exists()


def test_an_edit_that_breaks_a_name_over_two_lines_changes_nothing(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    before = stored_state(opportunity)
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", {
        **new_opportunity(), "name": "Rollout\nphase 2", "next_step": "Call\rback",
        "version": opportunity.version})
    assert response.status_code == 400
    assert stored_state(opportunity) == before


def test_accounts_and_contacts_keep_their_names_on_one_line(client):
    client.force_login(RepFactory())
    account = AccountFactory()

    assert client.post("/accounts/new/", {"name": "Nord\nbank"}).status_code == 400
    assert client.post(f"/accounts/{account.pk}/contacts/new/", {
        "first_name": "Ada\rMary", "last_name": "Lovelace"}).status_code == 400
    assert Account.objects.count() == 1 and not Contact.objects.exists()


def test_a_champion_added_by_name_keeps_it_on_one_line(client):
    opportunity = OpportunityFactory()
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/champion/", {
        "first_name": "Ada", "last_name": "Love\nlace", "version": opportunity.version})
    assert response.status_code == 400
    assert not Contact.objects.exists()


def test_the_admin_refuses_a_name_over_two_lines(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.post("/admin/crm/account/add/", {
        "name": "Nord\r\nbank", "website": "", "industry": "",
        "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"]
    assert not Account.objects.exists()


# --- currencies a total can convert ---


def test_a_currency_without_an_exchange_rate_is_refused_and_one_with_a_rate_accepted(client):
    client.force_login(RepFactory())

    unknown = client.post("/opportunities/new/", new_opportunity(currency="XYZ"))
    no_rate = client.post("/opportunities/new/", new_opportunity(currency="GBP"))
    ExchangeRateFactory(currency="GBP", rate=Decimal("1.17"))
    with_rate = client.post("/opportunities/new/", new_opportunity(currency="gbp"))

    assert unknown.status_code == 400
    assert "“XYZ” is not an ISO 4217 currency code" in unknown.content.decode()
    assert no_rate.status_code == 400
    assert "There is no exchange rate for GBP: use EUR" in no_rate.content.decode()
    assert with_rate.status_code == 302
    assert Opportunity.objects.get().currency == "GBP"


def test_a_deal_kept_in_a_currency_that_lost_its_rate_can_still_be_edited(client):
    opportunity = OpportunityFactory(currency="SEK")
    client.force_login(opportunity.owner)
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", {
        **new_opportunity(currency="SEK"), "version": opportunity.version})
    assert response.status_code == 302


@pytest.mark.parametrize(("code", "accepted"), [("usd", True), ("ZZZ", False), ("U$D", False)])
def test_sales_ops_add_rates_only_for_iso_currencies(client, code, accepted):
    client.force_login(SalesOpsFactory(is_staff=True))
    response = client.post("/admin/crm/exchangerate/add/", {"currency": code, "rate": "0.9"})
    assert (response.status_code == 302) is accepted
    assert ExchangeRate.objects.filter(currency="USD").exists() is accepted


def test_the_admin_refuses_an_opportunity_in_a_currency_without_a_rate(client):
    rep = RepFactory(is_staff=True)
    client.force_login(rep)
    response = client.post("/admin/pipeline/opportunity/add/", {
        "account": AccountFactory().pk, "name": "Pilot", "type": "new_business",
        "source": "inbound", "owner": rep.pk, "amount": "12000", "currency": "JPY",
        "expected_close_date": "2027-03-31", "_save": "Save"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["currency"]
    assert not Opportunity.objects.exists()


# --- texts of a sensible length ---


def test_a_move_reason_longer_than_the_limit_is_refused_and_changes_nothing(client):
    opportunity = advance(OpportunityFactory(), Stage.DISCOVERING)
    client.force_login(opportunity.owner)
    before = stored_state(opportunity)

    response = client.post(f"/opportunities/{opportunity.pk}/move/", {
        "stage": Stage.IDENTIFYING, "reason": TOO_LONG, "version": opportunity.version})

    assert response.status_code == 400
    assert "at most 2000 characters" in response.content.decode()
    assert stored_state(opportunity) == before


def test_dead_notes_extension_reasons_and_evidence_have_the_same_limit(client):
    rep = RepFactory()
    manager = ManagerFactory(team=rep.team)
    opportunity = advance(OpportunityFactory(owner=rep), Stage.DISCOVERING)
    client.force_login(manager)
    before = stored_state(opportunity)

    parked = client.post(f"/opportunities/{opportunity.pk}/move/", {
        "stage": Stage.DEAD, "dead_reason": "no_budget", "reason": TOO_LONG})
    extended = client.post(f"/opportunities/{opportunity.pk}/extend/", {
        "days": 10, "reason": TOO_LONG})
    ticked = client.post(f"/opportunities/{opportunity.pk}/tick/", {
        "criterion": "discovering.goals_written", "note": TOO_LONG})

    assert [parked.status_code, extended.status_code, ticked.status_code] == [400] * 3
    assert stored_state(opportunity) == before
    assert not DeadlineExtension.objects.exists()


def test_the_models_refuse_an_overlong_text_from_any_door():
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep)
    satisfy_gate(opportunity)
    manager = ManagerFactory(team=rep.team)

    with pytest.raises(InvalidChange, match="at most 2000"):
        opportunity.move_to(Stage.DISCOVERING, by=rep, via=Via.API, reason=TOO_LONG)
    with pytest.raises(InvalidChange, match="at most 2000"):
        opportunity.tick("discovering.goals_written", by=rep, note=TOO_LONG)
    opportunity.move_to(Stage.DISCOVERING, by=rep, via=Via.API)
    with pytest.raises(InvalidChange, match="at most 2000"):
        opportunity.grant_extension(5, by=manager, reason=TOO_LONG)


def test_the_database_refuses_an_overlong_text_written_around_the_models():
    opportunity = OpportunityFactory()
    writes = [
        lambda: StageChange.objects.create(opportunity=opportunity, from_stage="identifying",
                                           to_stage="dead", via=Via.SEED, reason=TOO_LONG),
        lambda: CriterionTick.objects.create(opportunity=opportunity, ticked_by=opportunity.owner,
                                             criterion="identifying.problem_described",
                                             note=TOO_LONG),
        lambda: Opportunity.objects.filter(pk=opportunity.pk).update(dead_note=TOO_LONG),
    ]
    for write in writes:
        with pytest.raises(IntegrityError), transaction.atomic():
            write()
