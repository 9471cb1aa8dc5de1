"""The Django admin: every model, the role rules, history that cannot be rewritten."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import (
    Account,
    Contact,
    ContactErasure,
    ExchangeRate,
    Notification,
    Team,
    User,
)
from crm.tokens import ApiToken
from forecasting.models import (
    EnteringOpportunity,
    ForecastCall,
    Quota,
    Snapshot,
    SnapshotRow,
    StoredQuarter,
    Target,
)
from pipeline.contact_privacy import erase_contact
from pipeline.models import (
    Activity,
    ActivityRule,
    ChangeForbidden,
    ClosePlan,
    ClosePlanEvent,
    ClosePlanStep,
    CommitteeMember,
    CriterionTick,
    DeadlineExtension,
    DeadPoolClaim,
    FieldChange,
    HandoffTask,
    ImportBatch,
    Offer,
    OfferLine,
    Opportunity,
    PurchaseOrder,
    ShareLink,
    StageChange,
    StageTimeout,
    Via,
)
from pipeline.process import DeadReason, Stage
from tests.factories import (
    BdrFactory,
    ContactFactory,
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    UserFactory,
    advance,
    approve,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db


# What happened is recorded by the models' methods and only ever read in the admin.
VIEW_ONLY = {StageChange, FieldChange, CriterionTick, CommitteeMember, DeadlineExtension,
             Notification, Offer, OfferLine, PurchaseOrder, HandoffTask, ClosePlan,
             ClosePlanStep, ShareLink, ClosePlanEvent, Target, DeadPoolClaim, ForecastCall,
             Snapshot, SnapshotRow, Activity, ContactErasure, ApiToken, ImportBatch,
             StoredQuarter, EnteringOpportunity}
# One row, made by the migration: a second cannot be added.
SINGLE_ROW = {ActivityRule}


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def logged_in(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def superuser():
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.fixture
def manager():
    return ManagerFactory(is_staff=True)


@pytest.fixture
def rep(manager):
    return RepFactory(is_staff=True, team=manager.team)


@pytest.fixture
def sales_ops():
    return SalesOpsFactory(is_staff=True)


def opportunity_form(opportunity: Opportunity, **changes) -> dict:
    """What the admin's change form posts for `opportunity`, with `changes` applied."""
    data = {
        "name": opportunity.name,
        "type": opportunity.type,
        "source": opportunity.source,
        "owner": opportunity.owner_id,
        "amount": str(opportunity.amount),
        "currency": opportunity.currency,
        "expected_close_date": opportunity.expected_close_date.isoformat(),
        "next_step": opportunity.next_step,
        "next_step_date": "",
        "loaded_version": opportunity.version,
        "_save": "Save",
    }
    data.update(changes)
    return data


# --- every model has an admin that renders ---


@pytest.fixture
def one_of_everything(superuser, manager, rep, sales_ops):
    """One row of every model of the three apps, made the way the app makes them."""
    opportunity = advance(OpportunityFactory(owner=rep), Stage.NEGOTIATING)
    opportunity.update_details(amount=Decimal("60000.00"), by=rep)
    opportunity.save_offer(by=rep, service_start=timezone.localdate(),
                           service_end=timezone.localdate() + timedelta(days=364),
                           payment_terms="30 days net")
    opportunity.add_offer_line(by=rep, description="Licences", quantity=Decimal(10),
                               list_price=Decimal(6000))
    won = approve(advance(OpportunityFactory(owner=rep), Stage.PENDING), sales_ops)
    opportunity.grant_extension(10, by=manager, reason="Board meets next month")
    Notification.send(rep, "A subject", "A message")
    dead = OpportunityFactory(owner=rep)
    dead.move_to(Stage.DEAD, by=rep, via=Via.PAGE, reason="No budget",
                 dead_reason=DeadReason.NO_BUDGET)
    claim = dead.claim(by=BdrFactory(team=rep.team))
    snapshot, _taken = Snapshot.take(timezone.now(), by=manager)
    return {
        Team: manager.team,
        User: rep,
        Account: opportunity.account,
        Contact: opportunity.champion,
        ExchangeRate: ExchangeRateFactory(),
        Notification: Notification.objects.first(),
        ApiToken: ApiToken.issue(rep, "Nightly export")[0],
        Opportunity: opportunity,
        Offer: opportunity.offer,
        OfferLine: opportunity.offer.lines.get(),
        PurchaseOrder: won.purchase_orders.get(),
        HandoffTask: won.handoff_tasks.first(),
        ClosePlan: won.close_plan,
        ClosePlanStep: won.close_plan.steps.first(),
        ShareLink: won.close_plan.links.first(),
        ClosePlanEvent: won.close_plan.events.first(),
        CommitteeMember: CommitteeMember.objects.first(),
        CriterionTick: CriterionTick.objects.first(),
        StageChange: StageChange.objects.first(),
        FieldChange: FieldChange.objects.first(),
        DeadlineExtension: DeadlineExtension.objects.first(),
        DeadPoolClaim: claim,
        StageTimeout: StageTimeout.objects.create(stage=Stage.DISCOVERING, days=20,
                                                  updated_by=sales_ops),
        Target: Target.objects.create(team=manager.team, fiscal_year=2026, quarter=1,
                                      amount=Decimal("250000"), set_by=manager),
        Quota: Quota.set(rep=rep, fiscal_year=2026, quarter=1, amount=Decimal("250000"),
                         by=manager),
        ForecastCall: ForecastCall.submit(by=rep, commit=Decimal("1000"),
                                          best_case=Decimal("2000")),
        Snapshot: snapshot,
        SnapshotRow: snapshot.opportunity_rows.first(),
        StoredQuarter: (stored := StoredQuarter.objects.create(
            fiscal_year=2025, quarter=1, starts_at=datetime(2025, 1, 1, tzinfo=UTC),
            ends_at=datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC))),
        EnteringOpportunity: EnteringOpportunity.objects.create(
            stored_quarter=stored, opportunity=opportunity, amount=Decimal("1000"),
            currency="EUR"),
        Group: Group.objects.get(name="rep"),
        Activity: Activity.objects.first(),  # the call planned to leave Identifying
        ActivityRule: ActivityRule.objects.get_or_create(pk=1)[0],
        ContactErasure: erase_contact(ContactFactory(account=opportunity.account),
                                      by=sales_ops, reason="Asked by letter"),
        ImportBatch: ImportBatch.objects.create(
            created_by=sales_ops, file_name="deals.csv", content=b"Deal Name\n", vendor="hubspot",
            default_owner=rep),
    }


def test_every_model_of_the_app_has_an_admin(one_of_everything):
    app_models = {
        model
        for label in ("crm", "pipeline", "forecasting")
        for model in apps.get_app_config(label).get_models()
    }
    assert app_models <= set(one_of_everything)
    assert all(admin.site.is_registered(model) for model in one_of_everything)


def test_changelist_and_change_page_of_every_model_render_for_a_superuser(
    client, superuser, one_of_everything
):
    logged_in(client, superuser)
    for model, row in one_of_everything.items():
        assert client.get(admin_url(model, "changelist")).status_code == 200, model
        assert client.get(admin_url(model, "change", row.pk)).status_code == 200, model
        add_page = client.get(admin_url(model, "add")).status_code
        assert add_page == (403 if model in VIEW_ONLY | SINGLE_ROW else 200), model


def test_the_admin_index_lists_the_apps_for_staff_with_a_role(client, rep):
    response = logged_in(client, rep).get(reverse("admin:index"))

    assert response.status_code == 200
    listed = {entry["app_label"] for entry in response.context["app_list"]}
    assert {"crm", "pipeline", "forecasting"} <= listed


@pytest.mark.parametrize("model", [Opportunity, StageChange, FieldChange, User])
def test_changelist_queries_do_not_grow_with_rows(client, superuser, model):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(admin_url(model, "changelist")).status_code == 200
        return len(queries)

    def add_an_opportunity_with_history():
        opportunity = OpportunityFactory()
        opportunity.update_details(amount=Decimal("1.00"), by=superuser)
        satisfy_gate(opportunity)
        opportunity.move_to(Stage.DISCOVERING, by=superuser, via=Via.PAGE)

    logged_in(client, superuser)
    add_an_opportunity_with_history()
    with_one = queries_for_the_list()
    for _ in range(4):
        add_an_opportunity_with_history()

    assert queries_for_the_list() == with_one


# --- nothing is deleted; history is view-only ---


@pytest.mark.parametrize("year", ["9999", "2147483648", "-1"])
def test_a_date_drill_down_beyond_the_calendar_says_incorrect_lookup(client, superuser, year):
    logged_in(client, superuser)
    response = client.get(admin_url(StageChange, "changelist"), {"changed_at__year": year})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_a_form_sent_back_with_an_account_that_is_no_id_shows_the_form(client, superuser):
    logged_in(client, superuser)
    response = client.post(admin_url(Contact, "add"), {"account": "abc", "first_name": "Ada"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["account"]
    assert client.get(admin_url(Contact, "add"), {"account": "abc"}).status_code == 200


def test_no_admin_offers_a_delete_action_or_permission(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in admin.site._registry.items():
        assert "delete_selected" not in model_admin.get_actions(request), model
        assert not model_admin.has_delete_permission(request), model


def test_deleting_an_account_through_the_admin_is_forbidden(client, superuser):
    account = ContactFactory().account
    logged_in(client, superuser)

    assert client.get(admin_url(Account, "delete", account.pk)).status_code == 403
    assert client.post(admin_url(Account, "delete", account.pk), {"post": "yes"}).status_code \
        == 403
    assert Account.objects.filter(pk=account.pk).exists()


def test_archiving_accounts_keeps_them_with_an_archive_date(client, superuser):
    account = ContactFactory().account
    logged_in(client, superuser)

    response = client.post(admin_url(Account, "changelist"), {
        "action": "archive_selected", "_selected_action": [account.pk], "index": 0,
    })

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.archived_at is not None


@pytest.mark.parametrize(
    ("model", "field", "new_value"),
    [
        (StageChange, "reason", "rewritten"),
        (FieldChange, "new_value", "1"),
        (CriterionTick, "note", "rewritten"),
        (Notification, "subject", "rewritten"),
        (CommitteeMember, "confirmed_on", "2020-01-01"),
        (DeadlineExtension, "reason", "rewritten"),
    ],
)
def test_history_rows_cannot_be_added_changed_or_deleted(
    client, superuser, rep, model, field, new_value
):
    opportunity = advance(OpportunityFactory(owner=rep), Stage.CONFIRMING)
    opportunity.update_details(amount=Decimal("1.00"), by=rep)
    opportunity.grant_extension(10, by=superuser, reason="Board meets next month")
    Notification.send(rep, "A subject", "A message")
    row = model.objects.first()
    before = getattr(row, field)
    logged_in(client, superuser)

    assert client.get(admin_url(model, "add")).status_code == 403
    assert client.post(admin_url(model, "add"), {field: new_value}).status_code == 403
    assert client.post(admin_url(model, "change", row.pk), {field: new_value}).status_code \
        == 403
    assert client.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert getattr(row, field) == before


# --- opportunities go through the model ---


def test_the_opportunity_form_has_no_stage_field_and_a_posted_stage_is_ignored(
    client, superuser
):
    opportunity = OpportunityFactory()
    logged_in(client, superuser)

    page = client.get(admin_url(Opportunity, "change", opportunity.pk))
    assert page.status_code == 200
    assert 'name="stage"' not in page.content.decode()
    assert "stage" not in page.context["adminform"].form.fields

    response = client.post(admin_url(Opportunity, "change", opportunity.pk),
                           opportunity_form(opportunity, stage=Stage.CLOSED))

    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.IDENTIFYING
    assert not opportunity.stage_changes.exists()


def test_editing_the_amount_in_the_admin_writes_a_field_change_and_bumps_the_version(
    client, superuser
):
    opportunity = OpportunityFactory(amount=Decimal("50000.00"))
    logged_in(client, superuser)

    response = client.post(admin_url(Opportunity, "change", opportunity.pk),
                           opportunity_form(opportunity, amount="75000.00"))

    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert opportunity.amount == Decimal("75000.00")
    assert opportunity.version == 2
    assert opportunity.changed_by == superuser
    change = FieldChange.objects.get(opportunity=opportunity)
    assert (change.field, change.old_value, change.new_value) == ("amount", "50000.00",
                                                                   "75000.00")
    assert change.via == Via.ADMIN
    assert change.changed_by == superuser


def test_an_opportunity_added_in_the_admin_starts_in_identifying(client, rep):
    account = ContactFactory().account
    ExchangeRateFactory(currency="USD")
    logged_in(client, rep)

    response = client.post(admin_url(Opportunity, "add"), {
        "account": account.pk, "name": "Pilot", "type": "new_business", "source": "inbound",
        "owner": rep.pk, "amount": "12000", "currency": "usd",
        "expected_close_date": (timezone.localdate() + timedelta(days=60)).isoformat(),
        "next_step": "", "next_step_date": "", "_save": "Save",
    })

    assert response.status_code == 302
    opportunity = Opportunity.objects.get(name="Pilot")
    assert opportunity.stage == Stage.IDENTIFYING
    assert opportunity.owner == rep
    assert opportunity.currency == "USD"
    assert opportunity.amount_at_stage_entry == Decimal("12000")
    assert opportunity.changed_by == rep


def test_a_rep_cannot_open_an_opportunity_for_a_colleague(client, rep):
    colleague = RepFactory(team=rep.team)
    account = ContactFactory().account
    logged_in(client, rep)

    response = client.post(admin_url(Opportunity, "add"), {
        "account": account.pk, "name": "Pilot", "type": "new_business", "source": "inbound",
        "owner": colleague.pk, "amount": "12000", "currency": "EUR",
        "expected_close_date": (timezone.localdate() + timedelta(days=60)).isoformat(),
        "_save": "Save",
    })

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["owner"]
    assert not Opportunity.objects.filter(name="Pilot").exists()


def test_an_edit_made_since_the_page_was_loaded_shows_an_error_and_changes_nothing(
    client, superuser, rep
):
    opportunity = OpportunityFactory(owner=rep, amount=Decimal("50000.00"))
    stale_form = opportunity_form(opportunity, amount="90000.00")
    opportunity.update_details(next_step="Call the CFO", by=rep)
    logged_in(client, superuser)

    response = client.post(admin_url(Opportunity, "change", opportunity.pk), stale_form,
                           follow=True)

    assert response.status_code == 200
    assert any("since you loaded it" in message for message in messages_of(response))
    opportunity.refresh_from_db()
    assert opportunity.amount == Decimal("50000.00")
    assert opportunity.version == 2
    assert not FieldChange.objects.filter(opportunity=opportunity).exists()


def test_a_rep_cannot_reassign_their_opportunity_in_the_admin(client, rep):
    opportunity = OpportunityFactory(owner=rep)
    colleague = RepFactory(team=rep.team)
    logged_in(client, rep)

    response = client.post(admin_url(Opportunity, "change", opportunity.pk),
                           opportunity_form(opportunity, owner=colleague.pk))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["owner"]
    opportunity.refresh_from_db()
    assert opportunity.owner == rep


def test_a_manager_cannot_hand_their_teams_deal_to_another_teams_rep_in_the_form(
        client, manager, rep):
    """The same rule as the bulk reassignment: only to a rep of a team they lead."""
    opportunity = OpportunityFactory(owner=rep)
    outsider = RepFactory(is_staff=True)
    teammate = RepFactory(team=manager.team)
    logged_in(client, manager)

    refused = client.post(admin_url(Opportunity, "change", opportunity.pk),
                          opportunity_form(opportunity, owner=outsider.pk))
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["owner"] == [
        "Choose an active account executive of a team you lead."]
    assert Opportunity.objects.get(pk=opportunity.pk).owner == rep

    handed = client.post(admin_url(Opportunity, "change", opportunity.pk),
                         opportunity_form(opportunity, owner=teammate.pk))
    assert handed.status_code == 302
    assert Opportunity.objects.get(pk=opportunity.pk).owner == teammate


def test_no_door_hands_a_deal_to_another_teams_rep(manager, rep):
    opportunity = OpportunityFactory(owner=rep)
    with pytest.raises(ChangeForbidden, match="cannot take it over"):
        opportunity.update_details(owner=RepFactory(), by=manager)
    assert not FieldChange.objects.exists()


def test_a_rep_sees_their_teams_opportunities_and_edits_only_their_own(client, rep):
    own = OpportunityFactory(owner=rep)
    colleagues = OpportunityFactory(owner=RepFactory(team=rep.team))
    other_team = OpportunityFactory()
    logged_in(client, rep)

    listed = client.get(admin_url(Opportunity, "changelist")).context["cl"].result_list
    assert set(listed) == {own, colleagues}
    page = client.get(admin_url(Opportunity, "change", colleagues.pk))
    assert page.status_code == 200
    assert 'name="amount"' not in page.content.decode()
    response = client.post(admin_url(Opportunity, "change", colleagues.pk),
                           opportunity_form(colleagues, amount="1.00"))
    assert response.status_code == 403
    response = client.get(admin_url(Opportunity, "change", other_team.pk))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    colleagues.refresh_from_db()
    assert colleagues.amount == Decimal("50000.00")


# --- settings kept by sales ops ---


def test_a_rep_can_read_but_not_change_stage_timeouts_or_exchange_rates(client, rep):
    timeout = StageTimeout.objects.create(stage=Stage.DISCOVERING, days=20)
    rate = ExchangeRateFactory(currency="USD", rate=Decimal("0.9"))
    logged_in(client, rep)

    assert client.get(admin_url(StageTimeout, "changelist")).status_code == 200
    assert client.get(admin_url(ExchangeRate, "changelist")).status_code == 200
    assert client.post(admin_url(StageTimeout, "change", timeout.pk),
                       {"stage": "discovering", "days": "5"}).status_code == 403
    assert client.post(admin_url(ExchangeRate, "change", rate.pk),
                       {"currency": "USD", "rate": "2"}).status_code == 403
    assert client.post(admin_url(StageTimeout, "add"),
                       {"stage": "validating", "days": "5"}).status_code == 403
    assert client.post(admin_url(ExchangeRate, "add"),
                       {"currency": "GBP", "rate": "1.2"}).status_code == 403
    timeout.refresh_from_db()
    rate.refresh_from_db()
    assert timeout.days == 20
    assert rate.rate == Decimal("0.9")
    assert not ExchangeRate.objects.filter(currency="GBP").exists()


def test_sales_ops_change_stage_timeouts_and_exchange_rates_and_are_recorded(
    client, sales_ops
):
    timeout = StageTimeout.objects.create(stage=Stage.DISCOVERING, days=20)
    logged_in(client, sales_ops)

    response = client.post(admin_url(StageTimeout, "change", timeout.pk),
                           {"stage": "discovering", "days": "25", "_save": "Save"})
    assert response.status_code == 302
    response = client.post(admin_url(ExchangeRate, "add"),
                           {"currency": "gbp", "rate": "1.17", "_save": "Save"})
    assert response.status_code == 302

    timeout.refresh_from_db()
    assert (timeout.days, timeout.updated_by) == (25, sales_ops)
    rate = ExchangeRate.objects.get(currency="GBP")
    assert (rate.rate, rate.updated_by) == (Decimal("1.17"), sales_ops)


# --- quotas ---


def quota_form(rep: User, amount: str = "100000") -> dict:
    return {"rep": rep.pk, "fiscal_year": "2026", "quarter": "1", "amount": amount,
            "_save": "Save"}


def test_a_manager_sets_their_reps_quota(client, manager):
    rep = RepFactory(team=manager.team)
    logged_in(client, manager)

    response = client.post(admin_url(Quota, "add"), quota_form(rep))

    assert response.status_code == 302
    quota = Quota.objects.get(rep=rep)
    assert (quota.amount, quota.set_by, quota.team) == (Decimal("100000"), manager,
                                                        manager.team)
    response = client.post(admin_url(Quota, "change", quota.pk), {"amount": "120000",
                                                                   "_save": "Save"})
    assert response.status_code == 302
    quota.refresh_from_db()
    assert quota.amount == Decimal("120000")


def test_a_manager_cannot_set_another_teams_quota(client, manager, superuser):
    stranger = RepFactory()
    existing = Quota.set(rep=stranger, fiscal_year=2026, quarter=2,
                         amount=Decimal("50000"), by=superuser)
    logged_in(client, manager)

    response = client.post(admin_url(Quota, "add"), quota_form(stranger))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rep"]
    assert not Quota.objects.filter(rep=stranger, quarter=1).exists()

    response = client.post(admin_url(Quota, "change", existing.pk), {"amount": "1"})
    assert response.status_code == 403
    existing.refresh_from_db()
    assert existing.amount == Decimal("50000")


def test_a_rep_cannot_set_quotas_and_former_targets_stay_as_they_were(client, rep, manager):
    target = Target.objects.create(team=manager.team, fiscal_year=2026, quarter=1,
                                   amount=Decimal("1000"))
    logged_in(client, rep)
    assert client.post(admin_url(Quota, "add"), quota_form(rep)).status_code == 403
    assert not Quota.objects.exists()
    logged_in(client, manager)
    assert client.post(admin_url(Target, "change", target.pk),
                       {"amount": "1"}).status_code == 403
    target.refresh_from_db()
    assert target.amount == Decimal("1000")


# --- bulk reassignment of a leaving rep's opportunities ---


@pytest.fixture
def leaving_rep(manager):
    return RepFactory(team=manager.team)


@pytest.fixture
def book_of_the_leaving_rep(leaving_rep, sales_ops):
    """Two open opportunities, one closed and one dead."""
    identifying = OpportunityFactory(owner=leaving_rep)
    discovering = advance(OpportunityFactory(owner=leaving_rep), Stage.DISCOVERING)
    closed = approve(advance(OpportunityFactory(owner=leaving_rep), Stage.PENDING), sales_ops)
    dead = OpportunityFactory(owner=leaving_rep)
    dead.move_to(Stage.DEAD, by=leaving_rep, via=Via.PAGE, reason="Budget frozen",
                 dead_reason=DeadReason.NO_BUDGET)
    return {"open": [identifying, discovering], "closed": closed, "dead": dead}


def reassign(client, leaving: User, new_owner: User | None = None):
    """Choose the action on the user list, then (with a new owner) confirm it."""
    data = {"action": "reassign_open_opportunities", "_selected_action": [leaving.pk]}
    if new_owner is None:
        return client.post(admin_url(User, "changelist"), {**data, "index": 0})
    return client.post(admin_url(User, "changelist"),
                       {**data, "new_owner": new_owner.pk, "apply": "Reassign"})


def test_bulk_reassignment_moves_every_open_opportunity_and_leaves_closed_and_dead_alone(
    client, manager, leaving_rep, book_of_the_leaving_rep
):
    new_owner = RepFactory(team=manager.team)
    logged_in(client, manager)

    page = reassign(client, leaving_rep)
    assert page.status_code == 200
    assert "admin/crm/reassign.html" in [template.name for template in page.templates]
    assert "2 open opportunities" in page.content.decode()

    response = reassign(client, leaving_rep, new_owner)

    assert response.status_code == 302
    for opportunity in book_of_the_leaving_rep["open"]:
        opportunity.refresh_from_db()
        assert opportunity.owner == new_owner
        change = FieldChange.objects.get(opportunity=opportunity)
        assert (change.field, change.via, change.changed_by) == ("owner", Via.ADMIN, manager)
    for kept in (book_of_the_leaving_rep["closed"], book_of_the_leaving_rep["dead"]):
        kept.refresh_from_db()
        assert kept.owner == leaving_rep
        assert not FieldChange.objects.filter(opportunity=kept, field="owner").exists()
    logged = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Opportunity), action_flag=CHANGE,
        user=manager,
    )
    assert sorted(int(entry.object_id) for entry in logged) == sorted(
        opportunity.pk for opportunity in book_of_the_leaving_rep["open"]
    )
    assert Notification.objects.filter(recipient=new_owner).count() == 2


def test_a_manager_of_another_team_cannot_reassign(
    client, leaving_rep, book_of_the_leaving_rep
):
    other_manager = ManagerFactory(is_staff=True)
    new_owner = RepFactory(team=other_manager.team)
    logged_in(client, other_manager)

    response = reassign(client, leaving_rep, new_owner)

    assert response.status_code == 302
    assert any("Nothing was reassigned" in message for message in messages_of(response))
    assert not FieldChange.objects.filter(field="owner").exists()
    for opportunity in book_of_the_leaving_rep["open"]:
        opportunity.refresh_from_db()
        assert opportunity.owner == leaving_rep


def test_a_rep_is_not_offered_the_reassignment(client, rep, leaving_rep,
                                                book_of_the_leaving_rep):
    logged_in(client, rep)

    page = client.get(admin_url(User, "changelist"))
    response = reassign(client, leaving_rep, rep)

    assert page.status_code == 200
    assert "reassign_open_opportunities" not in page.content.decode()
    assert "reassign_open_opportunities" not in response.content.decode()
    assert not FieldChange.objects.filter(field="owner").exists()
    opportunity = book_of_the_leaving_rep["open"][0]
    opportunity.refresh_from_db()
    assert opportunity.owner == leaving_rep


def test_opportunities_are_only_reassigned_to_an_active_rep(
    client, manager, leaving_rep, book_of_the_leaving_rep
):
    gone = RepFactory(team=manager.team, is_active=False)
    logged_in(client, manager)

    response = reassign(client, leaving_rep, gone)

    assert response.status_code == 200
    assert response.context["form"].errors["new_owner"]
    assert not FieldChange.objects.filter(field="owner").exists()


def test_a_superuser_reassigns_across_teams(client, superuser, leaving_rep,
                                             book_of_the_leaving_rep):
    new_owner = RepFactory()
    logged_in(client, superuser)

    response = reassign(client, leaving_rep, new_owner)

    assert response.status_code == 302
    assert FieldChange.objects.filter(field="owner").count() == 2
    assert set(Opportunity.objects.open().values_list("owner", flat=True)) == {new_owner.pk}
