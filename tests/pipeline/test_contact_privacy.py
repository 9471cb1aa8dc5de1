"""Issue 13, Privacy: sales ops erase a contact on request (anonymised in place, deals and
history kept, logged, for good) and export everything stored about one as JSON."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Contact, ContactErasure, ErasureRefused, Notification
from pipeline.models import (
    Activity,
    ClosePlanEvent,
    ClosePlanStep,
    CriterionTick,
    FieldChange,
    Opportunity,
    StageChange,
)
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    make_cast,
    plan_call,
)

pytestmark = pytest.mark.django_db

NAME, EMAIL, PHONE = "Anna Fischer", "anna.fischer@nordbank.example", "+49 30 1234567"
PERSONAL = ("first_name", "last_name", "title", "email", "phone")


@pytest.fixture
def story():
    """Anna Fischer: champion and committee member of a deal, on a call, owner of a close
    plan step with a share link, and named in a tick, the next step and a notification."""
    cast = make_cast()
    opportunity = OpportunityFactory(owner=cast.rep, amount="80000.00")
    anna = ContactFactory(account=opportunity.account, first_name="Anna",
                          last_name="Fischer", title="CFO", email=EMAIL, phone=PHONE)
    rep = cast.rep
    opportunity.name_champion(anna, by=rep)
    opportunity.add_committee_member(anna, by=rep)
    plan_call(opportunity, by=rep, contacts=[anna], subject=f"Call with {NAME}",
              notes=f"Write to {EMAIL} or call {PHONE}; Fischer prefers mornings.")
    opportunity.tick("identifying.problem_described", by=rep,
                     note=f"{NAME} described the problem.")
    opportunity.update_details(by=rep, next_step=f"Send {NAME} the summary")
    today = timezone.localdate()
    opportunity.save_close_plan(by=rep, target_signature_date=today + timedelta(days=60))
    opportunity.add_plan_step(by=rep, title=f"{NAME} signs the order",
                              due_date=today + timedelta(days=30), owner_contact=anna)
    opportunity.share_close_plan(anna, by=rep)
    Notification.send(rep, f"{NAME} called", f"{NAME} wants the offer by Friday.")
    opportunity.reload()
    return cast, opportunity, anna


def erase(client, user, contact, reason="Asked by e-mail on 3 December"):
    client.force_login(user)
    return client.post(f"/contacts/{contact.pk}/erase/", {"reason": reason})


def everything_text(opportunity: Opportunity) -> str:
    """Every stored text around the deal, to search for what must be gone."""
    rows = [
        *Opportunity.objects.filter(pk=opportunity.pk).values("name", "next_step"),
        *Activity.objects.values("subject", "notes"),
        *CriterionTick.objects.values("note"),
        *FieldChange.objects.values("old_value", "new_value"),
        *StageChange.objects.values("reason"),
        *ClosePlanStep.objects.values("title"),
        *ClosePlanEvent.objects.values("detail"),
        *Notification.objects.values("subject", "body"),
        *ContactErasure.objects.values("reason"),
    ]
    return json.dumps(rows)


def test_erasing_anonymises_every_personal_field_and_every_mention(client, story):
    cast, opportunity, anna = story
    assert NAME in everything_text(opportunity)

    response = erase(client, cast.sales_ops, anna, reason=f"{NAME} asked by e-mail")

    assert response.status_code == 302
    anna.refresh_from_db()
    assert all(getattr(anna, field) == "" for field in PERSONAL)
    assert anna.is_erased and anna.archived_at is not None
    text = everything_text(opportunity)
    for trace in (NAME, "Fischer", EMAIL, PHONE):
        assert trace not in text
    assert f"[erased contact #{anna.pk}]" in text
    assert str(anna) == f"Erased contact #{anna.pk}"
    for page in (f"/contacts/{anna.pk}/", f"/accounts/{anna.account_id}/",
                 f"/opportunities/{opportunity.pk}/"):
        shown = client.get(page)
        assert shown.status_code == 200
        assert NAME not in shown.content.decode() and EMAIL not in shown.content.decode()


def test_erasing_keeps_the_deal_its_history_and_its_figures(client, story):
    cast, opportunity, anna = story
    before = (opportunity.amount, opportunity.stage, opportunity.champion_id,
              StageChange.objects.count(), FieldChange.objects.count(),
              CriterionTick.objects.count(), Activity.objects.count(),
              list(opportunity.active_committee()))

    erase(client, cast.sales_ops, anna)

    opportunity = Opportunity.objects.get(pk=opportunity.pk)
    after = (opportunity.amount, opportunity.stage, opportunity.champion_id,
             StageChange.objects.count(), FieldChange.objects.count(),
             CriterionTick.objects.count(), Activity.objects.count(),
             list(opportunity.active_committee()))
    assert after == before
    assert Contact.objects.filter(pk=anna.pk).exists()  # anonymised, not deleted


def test_the_erasure_is_logged_with_who_when_which_and_why(client, story):
    cast, _opportunity, anna = story
    erase(client, cast.sales_ops, anna, reason=f"Request of {NAME} by letter")
    [erasure] = ContactErasure.objects.all()
    assert (erasure.contact_id, erasure.erased_by) == (anna.pk, cast.sales_ops)
    assert erasure.reason == f"Request of [erased contact #{anna.pk}] by letter"
    assert timezone.now() - erasure.erased_at < timedelta(minutes=5)
    with pytest.raises(ErasureRefused):
        erasure.save()
    with pytest.raises(ErasureRefused):
        erasure.delete()


@pytest.mark.parametrize("role", ["rep", "manager", "bdr"])
def test_only_sales_ops_may_erase_or_export(client, story, role):
    cast, _opportunity, anna = story
    user = getattr(cast, role)
    assert erase(client, user, anna).status_code == 403
    assert client.get(f"/contacts/{anna.pk}/erase/").status_code == 403
    assert client.get(f"/contacts/{anna.pk}/export/").status_code == 403
    anna.refresh_from_db()
    assert anna.first_name == "Anna" and not ContactErasure.objects.exists()
    assert "Erase" not in client.get(f"/contacts/{anna.pk}/").content.decode()


def test_an_erasure_without_a_reason_is_refused_and_changes_nothing(client, story):
    cast, _opportunity, anna = story
    response = erase(client, cast.sales_ops, anna, reason="   ")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    anna.refresh_from_db()
    assert anna.email == EMAIL and not ContactErasure.objects.exists()


def test_bad_input_gets_a_4xx(client, story):
    cast, _opportunity, anna = story
    assert erase(client, cast.sales_ops, anna, reason="x" * 501).status_code == 400
    client.force_login(cast.sales_ops)
    assert client.get("/contacts/999999/export/").status_code == 404
    assert client.post("/contacts/999999/erase/", {"reason": "why"}).status_code == 404
    assert client.get("/contacts/999999/").status_code == 404


def test_an_erasure_cannot_be_undone_or_reversed_by_edits(client, story):
    cast, opportunity, anna = story
    erase(client, cast.sales_ops, anna)
    assert erase(client, cast.sales_ops, anna).status_code == 409
    assert ContactErasure.objects.count() == 1

    client.force_login(cast.rep)
    assert client.post(f"/contacts/{anna.pk}/restore/").status_code == 409
    assert client.post(f"/contacts/{anna.pk}/edit/", {
        "first_name": "Anna", "last_name": "Fischer"}).status_code == 404
    anna.refresh_from_db()
    anna.first_name = "Anna"
    with pytest.raises(ErasureRefused):
        anna.save()
    with transaction.atomic(), pytest.raises(IntegrityError):
        Contact.objects.filter(pk=anna.pk).update(email=EMAIL)
    # An edit form opened before the erasure meets a conflict instead of writing it back.
    stale = opportunity.version
    response = client.post(f"/opportunities/{opportunity.pk}/edit/", {
        "name": opportunity.name, "type": opportunity.type, "source": opportunity.source,
        "amount": "80000.00", "currency": "EUR",
        "expected_close_date": opportunity.expected_close_date.isoformat(),
        "next_step": f"Send {NAME} the summary", "version": stale,
    })
    assert response.status_code == 409
    assert NAME not in Opportunity.objects.get(pk=opportunity.pk).next_step


def test_the_export_holds_what_the_contact_page_shows(client, story):
    cast, opportunity, anna = story
    client.force_login(cast.sales_ops)
    page = client.get(f"/contacts/{anna.pk}/").content.decode()
    response = client.get(f"/contacts/{anna.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert f'filename="contact-{anna.pk}.json"' in response["Content-Disposition"]
    data = json.loads(response.content)
    assert (data["contact"]["email"], data["contact"]["phone"]) == (EMAIL, PHONE)
    assert data["account"]["name"] == opportunity.account.name
    assert [item["opportunity"]["id"] for item in data["champion_of"]] == [opportunity.pk]
    assert len(data["committee_memberships"]) == 1
    assert [item["subject"] for item in data["activities"]] == [f"Call with {NAME}"]
    assert [step["step"] for step in data["close_plans"]["steps_owned"]] == [
        f"{NAME} signs the order"]
    assert len(data["close_plans"]["share_links"]) == 1
    kinds = {row["kind"] for row in data["history"]}
    assert {"field", "tick"} <= kinds
    for shown in (EMAIL, PHONE, "CFO", f"Call with {NAME}", f"{NAME} signs the order",
                  f"{NAME} described the problem."):
        assert shown in page


def test_a_rep_sees_the_contact_page_without_the_privacy_buttons(client, story):
    cast, opportunity, anna = story
    client.force_login(cast.rep)
    page = client.get(f"/contacts/{anna.pk}/").content.decode()
    assert opportunity.name in page and EMAIL in page
    assert f"/contacts/{anna.pk}/export/" not in page
    client.force_login(cast.sales_ops)
    page = client.get(f"/contacts/{anna.pk}/").content.decode()
    assert f"/contacts/{anna.pk}/export/" in page and f"/contacts/{anna.pk}/erase/" in page


def test_the_export_of_an_erased_contact_holds_nothing_personal(client, story):
    cast, _opportunity, anna = story
    erase(client, cast.sales_ops, anna)
    body = client.get(f"/contacts/{anna.pk}/export/").content.decode()
    for trace in (NAME, "Fischer", EMAIL, PHONE):
        assert trace not in body
    assert json.loads(body)["erasures"][0]["reason"] == "Asked by e-mail on 3 December"


def test_sales_ops_erase_from_the_admin_with_a_reason(client, story):
    cast, _opportunity, anna = story
    other = ContactFactory(account=anna.account, last_name="Weber")
    cast.sales_ops.is_staff = True
    cast.sales_ops.save()
    client.force_login(cast.sales_ops)
    selected = {"action": "erase_selected", helpers.ACTION_CHECKBOX_NAME: [anna.pk, other.pk]}
    confirmation = client.post("/admin/crm/contact/", selected)
    assert confirmation.status_code == 200
    assert "admin/crm/erase_contacts.html" in [t.name for t in confirmation.templates]
    assert not ContactErasure.objects.exists()

    client.post("/admin/crm/contact/", {**selected, "apply": "1", "reason": "By letter"})
    assert ContactErasure.objects.count() == 2
    assert not Contact.objects.filter(erased_at__isnull=True, pk__in=[anna.pk, other.pk])


def test_a_rep_cannot_erase_from_the_admin(client, story):
    cast, _opportunity, anna = story
    cast.rep.is_staff = True  # the rep may look around the admin
    cast.rep.save()
    client.force_login(cast.rep)
    client.post("/admin/crm/contact/", {
        "action": "erase_selected", helpers.ACTION_CHECKBOX_NAME: [anna.pk],
        "apply": "1", "reason": "By letter"})
    assert not ContactErasure.objects.exists()
