"""The API does what the pages do, for whom the pages let do it."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipeline.models import Activity, Opportunity, StageChange, Via
from pipeline.process import Stage
from tests.api_client import ApiClient
from tests.factories import (
    AccountFactory,
    ContactFactory,
    OpportunityFactory,
    accept_close_plan,
    advance,
    make_cast,
    record_order,
    satisfy_gate,
)

ROLES = ["rep", "colleague", "manager", "bdr", "sales_ops", "other_manager"]


@pytest.fixture
def cast(db):
    return make_cast()


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lists_exactly_the_opportunities_the_board_shows_it(cast, role):
    mine = OpportunityFactory(owner=cast.rep)
    OpportunityFactory(owner=cast.colleague)
    OpportunityFactory()  # another team's
    dead = OpportunityFactory(owner=cast.rep)
    dead.move_to(Stage.DEAD, by=cast.rep, via=Via.PAGE, reason="No budget",
                 dead_reason="no_budget")
    user = getattr(cast, role)
    listed = ids(ApiClient(user).get("/api/opportunities", page_size=100))
    assert listed == set(Opportunity.objects.visible_to(user).values_list("pk", flat=True))
    assert (mine.pk in listed) == (role not in ("other_manager",))


def test_an_opportunity_out_of_sight_is_not_found(cast):
    other = OpportunityFactory()
    assert ApiClient(cast.rep).get(f"/api/opportunities/{other.pk}").status_code == 404


def test_lists_are_paged_by_an_opaque_cursor_with_a_next_link(cast):
    created = [OpportunityFactory(owner=cast.rep).pk for _ in range(5)]
    api = ApiClient(cast.rep)
    first = api.get("/api/opportunities", page_size=2).json()
    assert [row["id"] for row in first["results"]] == created[:2]
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    assert cursor not in {str(pk) for pk in created}  # opaque, not an id
    seen = [row["id"] for row in first["results"]]
    link = first["next"]
    while link:
        page = api.client.get(link, headers=api.headers()).json()
        seen += [row["id"] for row in page["results"]]
        link = page["next"]
    assert seen == created


def test_a_broken_cursor_or_page_size_is_refused_with_a_message(cast):
    api = ApiClient(cast.rep)
    for params in ({"cursor": "not a cursor"}, {"page_size": 0}, {"page_size": "many"}):
        response = api.get("/api/opportunities", **params)
        assert 400 <= response.status_code < 500, params
        assert response.json()["detail"]


def test_an_opportunity_carries_its_exit_criteria_committee_and_version_as_etag(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    response = ApiClient(cast.rep).get(f"/api/opportunities/{opportunity.pk}")
    body = response.json()
    assert response["ETag"] == '"1"' and body["version"] == 1
    assert {c["key"] for c in body["exit_criteria"]} == set(body["missing_criteria"])
    assert body["committee"] == [] and "dead" in body["move_targets"]


def test_a_move_through_the_api_goes_through_move_to_and_is_recorded_as_via_api(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    response = ApiClient(cast.rep).post(
        f"/api/opportunities/{opportunity.pk}/move",
        {"stage": "dead", "reason": "No budget this year", "dead_reason": "no_budget"},
        headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == "dead" and response["ETag"] == '"2"'
    change = StageChange.objects.get(opportunity=opportunity)
    assert change.via == Via.API and change.changed_by == cast.rep


def test_a_gate_that_does_not_hold_answers_409_with_the_missing_criteria(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    response = ApiClient(cast.rep).post(f"/api/opportunities/{opportunity.pk}/move",
                                        {"stage": "discovering"})
    assert response.status_code == 409
    body = response.json()
    assert body["stage"] == "identifying"
    assert {m["key"] for m in body["missing"]} == {
        c.key for c in opportunity.missing_criteria()}
    assert all(m["label"] for m in body["missing"]) and body["detail"]
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.IDENTIFYING and opportunity.version == 1


def test_a_write_with_an_old_if_match_answers_412_and_changes_nothing(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    assert api.patch(url, {"name": "Renamed"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = api.patch(url, {"amount": "1.00"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale["ETag"] == '"2"'
    assert "since you loaded it" in stale.json()["detail"]
    moved = api.post(f"{url}/move", {"stage": "dead", "reason": "x", "dead_reason": "other"},
                     headers={"If-Match": '"1"'})
    assert moved.status_code == 412
    assert api.patch(url, {"name": "x"}, headers={"If-Match": "yesterday"}).status_code == 412
    opportunity.refresh_from_db()
    assert (opportunity.name, opportunity.version, opportunity.stage) == (
        "Renamed", 2, Stage.IDENTIFYING)


def test_a_patch_records_tracked_fields_via_the_api(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    response = ApiClient(cast.rep).patch(f"/api/opportunities/{opportunity.pk}",
                                         {"amount": "75000.00", "currency": "eur"})
    assert response.status_code == 200, response.content
    assert response.json()["amount"] in ("75000.00", 75000.0, "75000")
    assert opportunity.field_changes.get().via == Via.API
    history = ApiClient(cast.rep).get(f"/api/opportunities/{opportunity.pk}/history").json()
    assert [c["field"] for c in history["field_changes"]] == ["amount"]


@pytest.mark.parametrize("role, status", [
    ("rep", 200), ("manager", 200), ("colleague", 403), ("sales_ops", 403), ("bdr", 404),
])
def test_only_those_who_may_edit_change_an_opportunity(cast, role, status):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)
    response = ApiClient(getattr(cast, role)).patch(
        f"/api/opportunities/{opportunity.pk}", {"next_step": "Call the CFO"})
    assert response.status_code == status, response.content


@pytest.mark.parametrize("role, status", [
    ("rep", 201), ("bdr", 201), ("manager", 403), ("sales_ops", 403),
])
def test_reps_and_bdrs_open_opportunities_for_themselves_others_not(cast, role, status):
    account = AccountFactory()
    response = ApiClient(getattr(cast, role)).post("/api/opportunities", {
        "account": account.pk, "name": "Initech renewal", "source": "inbound",
        "amount": "12000.00", "currency": "EUR", "expected_close_date": "2030-06-30"})
    assert response.status_code == status, response.content
    if status == 201:
        assert response.json()["stage"] == "identifying" and response["ETag"] == '"1"'


def test_a_manager_opens_one_for_a_rep_of_their_team_but_a_rep_not_for_a_colleague(cast):
    body = {"account": AccountFactory().pk, "name": "Deal", "source": "inbound",
            "amount": "10.00", "currency": "EUR", "expected_close_date": "2030-06-30",
            "owner": cast.rep.pk}
    created = ApiClient(cast.manager).post("/api/opportunities", body)
    assert created.status_code == 201 and created.json()["owner"] == cast.rep.pk
    body["owner"] = cast.rep.pk
    assert ApiClient(cast.colleague).post("/api/opportunities", body).status_code == 403


def test_bad_input_is_refused_with_readable_messages(cast):
    api = ApiClient(cast.rep)
    body = {"account": AccountFactory().pk, "name": "Line\nbreak", "source": "inbound",
            "amount": "10.00", "currency": "XXQ", "expected_close_date": "2030-06-30"}
    response = api.post("/api/opportunities", body)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "currency"}
    assert api.post("/api/opportunities", raw="{not json").status_code == 400
    unfit = api.post("/api/opportunities", {"amount": -1})
    assert unfit.status_code == 422 and unfit.json()["detail"]
    assert {"amount", "name", "account"} <= set(unfit.json()["errors"])
    assert api.post("/api/accounts", {"name": ""}).status_code == 400
    assert not Opportunity.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_accounts_and_contacts_as_the_account_pages_show_them(cast, role):
    contact = ContactFactory()
    archived = ContactFactory(account=contact.account, archived_at=timezone.now())
    api = ApiClient(getattr(cast, role))
    assert contact.account_id in ids(api.get("/api/accounts"))
    assert ids(api.get("/api/contacts", account=contact.account_id)) == {contact.pk}
    assert api.get(f"/api/contacts/{archived.pk}").status_code == 404


def test_accounts_and_contacts_are_created_and_changed(cast):
    api = ApiClient(cast.bdr)
    account = api.post("/api/accounts", {"name": "Initech", "website": "initech.example"})
    assert account.status_code == 201, account.content
    account_id = account.json()["id"]
    assert account.json()["website"] == "https://initech.example"
    assert api.patch(f"/api/accounts/{account_id}", {"industry": "Software"}
                     ).json()["industry"] == "Software"
    contact = api.post("/api/contacts", {"account": account_id, "first_name": "Ada",
                                         "last_name": "Lovelace"})
    assert contact.status_code == 201, contact.content
    contact_id = contact.json()["id"]
    assert api.patch(f"/api/contacts/{contact_id}", {"email": "not an address"}
                     ).status_code == 400
    assert ids(api.get("/api/contacts", account=account_id)) == {contact_id}
    assert ids(api.get("/api/accounts", name="initech")) == {account_id}


def test_activities_are_logged_and_closed_as_on_the_page(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    contact = ContactFactory(account=opportunity.account)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}/activities"
    ahead = (timezone.now() + timedelta(days=2)).isoformat()
    planned = api.post(url, {"kind": "call", "at": ahead, "subject": "Discovery",
                             "contacts": [contact.pk]})
    assert planned.status_code == 201, planned.content
    assert planned.json()["status"] == "planned" and planned.json()["contacts"] == [contact.pk]
    done = api.post(f"{url}/{planned.json()['id']}/done")
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert api.post(f"{url}/{planned.json()['id']}/cancel").status_code == 400
    refused = api.post(url, {"kind": "call", "at": ahead, "subject": "x", "done": True})
    assert refused.status_code == 400 and "future" in refused.json()["detail"]
    assert ApiClient(cast.colleague).post(url, {"kind": "email", "at": ahead,
                                                "subject": "x"}).status_code == 403
    assert ids(api.get(url)) == set(Activity.objects.values_list("pk", flat=True))


def test_close_plan_offer_and_purchase_orders_are_read_through_their_opportunity(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING)
    accept_close_plan(opportunity)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    plan = api.get(f"{url}/close-plan")
    assert plan.status_code == 200 and plan.json()["is_accepted"] is True
    assert len(plan.json()["steps"]) >= 1
    assert api.get(f"{url}/offer").json()["detail"] == "This opportunity has no offer yet."
    assert api.get(f"{url}/purchase-orders").json()["results"] == []
    advance(opportunity, Stage.FINALIZING)
    opportunity.reload()
    record_order(opportunity)
    orders = api.get(f"{url}/purchase-orders").json()["results"]
    assert [order["number"] for order in orders] == ["PO-4711"]
    assert ApiClient(cast.other_manager).get(f"{url}/close-plan").status_code == 404


@pytest.mark.parametrize("role, status", [
    ("rep", 200), ("manager", 200), ("sales_ops", 200), ("bdr", 403),
])
def test_the_forecast_figures_follow_who_sees_the_forecast(cast, role, status):
    OpportunityFactory(owner=cast.rep)
    response = ApiClient(getattr(cast, role)).get("/api/forecast")
    assert response.status_code == status, response.content
    if status == 200:
        assert set(response.json()) >= {"closed", "commit", "best_case", "pipeline",
                                         "quarter", "owners"}


def test_a_bad_quarter_is_refused(cast):
    assert ApiClient(cast.rep).get("/api/forecast", quarter="0000-Q1").status_code == 400
    assert ApiClient(cast.rep).get("/api/forecast", quarter="soon").status_code == 422


def test_a_bdr_hands_a_deal_over_through_the_api_and_is_told_where_it_went(cast):
    opportunity = OpportunityFactory(owner=cast.bdr)
    satisfy_gate(opportunity)
    response = ApiClient(cast.bdr).post(
        f"/api/opportunities/{opportunity.pk}/move",
        {"stage": "discovering", "account_executive": cast.rep.pk})
    assert response.status_code == 200, response.content
    assert response.json()["owner"] == cast.rep.pk and response.json()["stage"] == "discovering"
    assert ApiClient(cast.bdr).get(f"/api/opportunities/{opportunity.pk}").status_code == 404


def test_a_script_ticks_what_the_409_names_and_then_moves(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    refusal = api.post(f"{url}/move", {"stage": "discovering"}).json()
    version = 1
    for missing in refusal["missing"]:
        if missing["key"] == "identifying.next_call_scheduled":  # derived: plan the call
            ahead = (timezone.now() + timedelta(days=2)).isoformat()
            api.post(f"{url}/activities", {"kind": "call", "at": ahead, "subject": "Next"})
            continue
        ticked = api.post(f"{url}/ticks", {"criterion": missing["key"], "note": "On file"},
                          headers={"If-Match": f'"{version}"'})
        assert ticked.status_code == 200, ticked.content
        version = int(ticked["ETag"].strip('"'))
    moved = api.post(f"{url}/move", {"stage": "discovering"},
                     headers={"If-Match": f'"{version}"'})
    assert moved.status_code == 200, moved.content
    assert moved.json()["stage"] == "discovering"


def test_a_tick_is_withdrawn_not_deleted_and_derived_criteria_cannot_be_ticked(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    api = ApiClient(cast.rep)
    url = f"/api/opportunities/{opportunity.pk}"
    key = "identifying.problem_described"
    assert api.post(f"{url}/ticks", {"criterion": key, "note": "Pain"}).status_code == 200
    withdrawn = api.post(f"{url}/ticks/{key}/withdraw")
    assert withdrawn.status_code == 200 and key in withdrawn.json()["missing_criteria"]
    assert opportunity.ticks.get().revoked_at is not None
    derived = api.post(f"{url}/ticks", {"criterion": "identifying.next_call_scheduled",
                                        "note": "x"})
    assert derived.status_code == 422
    assert ApiClient(cast.colleague).post(f"{url}/ticks", {"criterion": key, "note": "x"}
                                          ).status_code == 403


def test_a_page_of_opportunities_costs_the_same_queries_for_few_or_many(cast):
    api = ApiClient(cast.manager)
    api.get("/api/me")  # the token's first use notes the time; later ones within a minute not

    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/opportunities", page_size=100).status_code == 200
        return len(queries)

    OpportunityFactory(owner=cast.rep)
    few = queries_for_a_page()
    for _ in range(20):
        OpportunityFactory(owner=cast.colleague)
    assert queries_for_a_page() == few
