"""The close plan: steps on both sides, accepted by the rep and by the customer's contact
through a share link that expires, can be revoked, and opens nothing else."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import (
    ClosePlan,
    ClosePlanEvent,
    InvalidChange,
    Opportunity,
    ShareLink,
    Via,
)
from pipeline.process import Stage
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    RepFactory,
    accept_close_plan,
    advance,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate


def confirming_with_a_plan():
    """At Confirming, every criterion met but the close plan, which has one customer step
    and one of ours; returns the opportunity, the contact and a link for them."""
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    rep = opportunity.owner
    contact = ContactFactory(account=opportunity.account, first_name="Clara",
                             last_name="Customer")
    opportunity.save_close_plan(by=rep, target_signature_date=TODAY() + timedelta(days=40))
    opportunity.add_plan_step(by=rep, title="Legal review of the contract",
                              due_date=TODAY() + timedelta(days=10), owner_contact=contact)
    opportunity.add_plan_step(by=rep, title="Send the signable contract",
                              due_date=TODAY() + timedelta(days=5), owner_user=rep)
    link, token = opportunity.share_close_plan(contact, by=rep)
    return opportunity, contact, link, token


def test_the_gate_holds_once_both_sides_accepted_a_plan():
    opportunity, contact, link, token = confirming_with_a_plan()
    key = "confirming.close_plan_accepted"
    assert key in [c.key for c in opportunity.missing_criteria(Stage.CONFIRMING)]

    opportunity.accept_close_plan(by=opportunity.owner)
    opportunity.reload()
    assert key in [c.key for c in opportunity.missing_criteria(Stage.CONFIRMING)]

    ShareLink.opened(token).plan.accept_by_customer(link=link)
    opportunity.reload()
    assert key not in [c.key for c in opportunity.missing_criteria(Stage.CONFIRMING)]


def test_the_customer_sees_the_plan_ticks_their_step_and_accepts_under_their_name(client):
    opportunity, contact, link, token = confirming_with_a_plan()
    opportunity.accept_close_plan(by=opportunity.owner)
    other = OpportunityFactory(account=opportunity.account, name="Secret second deal")

    page = client.get(f"/plan/{token}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Legal review of the contract" in html and "Send the signable contract" in html
    assert other.name not in html and "/board/" not in html and "Log out" not in html
    customer_step, our_step = (ClosePlan.objects.get().steps.order_by("position"))
    assert html.count("Mark as done") == 1  # only their own step

    refused = client.post(f"/plan/{token}/steps/{our_step.pk}/done/")
    assert refused.status_code == 400
    assert client.post(f"/plan/{token}/steps/{customer_step.pk}/done/").status_code == 200
    accepted = client.post(f"/plan/{token}/accept/")

    assert "Accepted by Clara Customer" in accepted.content.decode()
    plan = ClosePlan.objects.get()
    assert (plan.customer_accepted_by, plan.steps.get(pk=customer_step.pk).status) == (
        contact, "done")
    events = list(ClosePlanEvent.objects.filter(by_contact=contact).values_list(
        "kind", "via_link"))
    assert events == [("step_done", link.pk), ("customer_accepted", link.pk)]


@pytest.mark.parametrize("trouble", ["expired", "revoked", "tampered", "unknown", "other"])
def test_a_link_that_does_not_open_gets_a_clear_page_and_no_data(client, trouble):
    opportunity, contact, link, token = confirming_with_a_plan()
    if trouble == "expired":
        ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    elif trouble == "revoked":
        opportunity.revoke_plan_link(link.pk, by=opportunity.owner)
    elif trouble == "tampered":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif trouble == "unknown":
        token = "x" * 43
    before = stored_state(opportunity)
    plan_before = list(ClosePlan.objects.values())

    if trouble == "other":  # a step of another plan, through this link
        _other, _contact, _link, _token = confirming_with_a_plan()
        step = ClosePlan.objects.exclude(pk=link.plan_id).get().steps.first()
        response = client.post(f"/plan/{token}/steps/{step.pk}/done/")
        assert response.status_code == 400
        assert step.__class__.objects.get(pk=step.pk).status == "not_started"
        return
    for response in (client.get(f"/plan/{token}/"), client.post(f"/plan/{token}/accept/")):
        html = response.content.decode()
        assert response.status_code == 404
        assert "This link does not open a plan" in html
        assert "Legal review" not in html and opportunity.account.name not in html
    assert stored_state(opportunity) == before
    assert list(ClosePlan.objects.values()) == plan_before


def test_the_token_is_not_stored_and_links_expire_after_thirty_days_by_default():
    opportunity, contact, link, token = confirming_with_a_plan()
    assert token not in str(list(ShareLink.objects.values()))
    assert link.token_hash != token and len(token) >= 40
    assert abs(link.expires_at - (link.created_at + timedelta(days=30))) < timedelta(
        seconds=5)


def test_a_link_is_only_for_a_current_contact_of_the_account():
    opportunity, contact, link, token = confirming_with_a_plan()
    with pytest.raises(InvalidChange, match="not a current contact"):
        opportunity.share_close_plan(ContactFactory(), by=opportunity.owner)


def test_a_material_change_withdraws_the_customers_acceptance_a_typo_fix_does_not():
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    plan = accept_close_plan(opportunity)
    step = plan.current_steps()[0]
    rep = opportunity.owner

    with pytest.raises(InvalidChange, match="say whether this change is material"):
        opportunity.change_plan_step(step.pk, by=rep, material=None, title="Typo")
    opportunity.change_plan_step(step.pk, by=rep, material=False,
                                 title="Order signed by the CFO.")
    assert ClosePlan.objects.get().customer_accepted_at is not None

    opportunity.change_plan_step(step.pk, by=rep, material=None, status="in_progress")
    assert ClosePlan.objects.get().customer_accepted_at is not None  # progress, not a change

    opportunity.change_plan_step(step.pk, by=rep, material=True,
                                 due_date=TODAY() + timedelta(days=60))
    plan = ClosePlan.objects.get()
    assert plan.customer_accepted_at is None
    assert plan.events.filter(kind="customer_acceptance_withdrawn").exists()
    opportunity.reload()
    assert "confirming.close_plan_accepted" in [c.key for c in opportunity.missing_criteria()]


def test_the_rep_builds_the_plan_and_shares_it_from_its_page(client):
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    contact = ContactFactory(account=opportunity.account)
    client.force_login(opportunity.owner)
    url = f"/opportunities/{opportunity.pk}/plan/"

    assert client.post(url, {"target_signature_date": "2027-03-31"}).status_code == 302
    assert client.post(url + "steps/", {
        "title": "Board approval", "owner": f"contact:{contact.pk}",
        "due_date": "2027-03-01", "status": "not_started"}).status_code == 302
    assert client.post(url + "steps/", {
        "title": "Step without owner", "owner": "contact:999999",
        "due_date": "2027-03-01"}).status_code == 400
    shared = client.post(url + "links/", {"contact": contact.pk, "days": "14"}, follow=True)

    token = re.search(r"/plan/([\w-]+)/", shared.content.decode()).group(1)
    assert ShareLink.opened(token).contact == contact
    page = client.get(url).content.decode()
    assert "Board approval" in page and token not in page  # shown once, never again


def test_overdue_steps_show_on_the_plan_the_card_and_the_opportunity_page(client):
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    rep = opportunity.owner
    opportunity.save_close_plan(by=rep, target_signature_date=TODAY() + timedelta(days=40))
    opportunity.add_plan_step(by=rep, title="Security questionnaire",
                              due_date=TODAY() - timedelta(days=2), owner_user=rep)
    client.force_login(rep)

    plan_page = client.get(f"/opportunities/{opportunity.pk}/plan/").content.decode()
    board = client.get("/board/").content.decode()
    detail = client.get(f"/opportunities/{opportunity.pk}/").content.decode()

    assert "overdue" in plan_page
    card = board[board.index(f'id="card-{opportunity.pk}"'):]
    assert "1 plan step overdue" in card[:card.index("</li>")]
    assert "1 plan step overdue" in detail
    assert f'href="/opportunities/{opportunity.pk}/plan/"' in detail


def test_a_colleague_cannot_change_the_plan(client):
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    accept_close_plan(opportunity)
    client.force_login(RepFactory(team=opportunity.owner.team))
    before = list(ClosePlan.objects.values())
    response = client.post(f"/opportunities/{opportunity.pk}/plan/",
                           {"target_signature_date": "2030-01-01"})
    assert response.status_code == 403
    assert list(ClosePlan.objects.values()) == before


def test_leaving_confirming_needs_the_accepted_plan():
    opportunity = advance(OpportunityFactory(), Stage.CONFIRMING)
    accept_close_plan(opportunity)
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.NEGOTIATING, by=opportunity.owner, via=Via.PAGE)
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.NEGOTIATING
