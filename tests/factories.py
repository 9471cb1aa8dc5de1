"""factory_boy factories: build data the way the app itself would."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.models import Account, Contact, ExchangeRate, Notification, Role, Team, User
from pipeline.models import (
    ActivityKind,
    ClosePlan,
    CommitteeMember,
    CriterionTick,
    FieldChange,
    Opportunity,
    OpportunityType,
    PurchaseOrder,
    ReviewCheck,
    Source,
    StageChange,
    Via,
)
from pipeline.process import CRITERIA, ORDERED_STAGES, PROCESS, CriterionKind, Stage

# Every factory-made user's password, typed into the login page by the browser tests.
PASSWORD = "correct horse battery staple"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)
    team = factory.SubFactory(TeamFactory)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get_or_create(name=Role(extracted))[0])


def with_role(role: Role):
    """A post-generation hook giving the user `role` (or the one passed as role=...)."""

    def give_role(user, create, extracted, **kwargs):
        user.groups.add(Group.objects.get_or_create(name=Role(extracted or role))[0])

    return factory.PostGeneration(give_role)


class RepFactory(UserFactory):
    role = with_role(Role.REP)


class BdrFactory(UserFactory):
    role = with_role(Role.BDR)


class SalesOpsFactory(UserFactory):
    role = with_role(Role.SALES_OPS)
    team = None


class ManagerFactory(UserFactory):
    role = with_role(Role.MANAGER)

    @factory.post_generation
    def leads(self, create, extracted, **kwargs):
        team = extracted or self.team
        team.manager = self
        team.save()


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Faker("company")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    title = "Head of Operations"


class OpportunityFactory(factory.django.DjangoModelFactory):
    """An opportunity in stage 1; use `advance()` to bring it further the real way."""

    class Meta:
        model = Opportunity

    account = factory.SubFactory(AccountFactory)
    owner = factory.SubFactory(RepFactory)
    name = factory.LazyAttribute(lambda o: f"{o.account.name} rollout")
    type = OpportunityType.NEW_BUSINESS
    source = Source.INBOUND
    amount = Decimal("50000.00")
    amount_at_stage_entry = factory.LazyAttribute(lambda o: o.amount)
    currency = "EUR"
    expected_close_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=90))


class ExchangeRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeRate
        django_get_or_create = ("currency",)

    currency = "USD"
    rate = Decimal("0.9")


def satisfy_gate(opportunity: Opportunity, stage: Stage | None = None, *, by=None) -> None:
    """Meet every exit criterion of `stage` (default: the current one) the real way."""
    stage = Stage(stage or opportunity.stage)
    by = by or opportunity.owner
    for criterion in PROCESS[stage].exit_criteria:
        if opportunity.criterion_met(criterion):
            continue
        if criterion.kind == CriterionKind.TICKED:
            opportunity.tick(criterion.key, by=by, note="evidence on file")
        elif criterion.key == "identifying.next_call_scheduled":
            plan_call(opportunity, by=by)
        elif criterion.key == "validating.champion_confirmed":
            contact = ContactFactory(account=opportunity.account)
            opportunity.name_champion(contact, by=by)
        elif criterion.key == "validating.committee_identified":
            opportunity.add_committee_member(ContactFactory(account=opportunity.account), by=by)
        elif criterion.key == "confirming.committee_preferred_vendor":
            if not opportunity.active_committee():
                opportunity.add_committee_member(
                    ContactFactory(account=opportunity.account), by=by
                )
            for member in opportunity.active_committee():
                opportunity.record_preferred_vendor(member.contact, by=by)
        elif criterion.key == "confirming.close_plan_accepted":
            accept_close_plan(opportunity, by=by)
        elif criterion.key == "finalizing.purchase_order_recorded":
            if opportunity.stage != Stage.FINALIZING:
                continue  # recorded once there; advance() comes back for it
            record_order(opportunity, by=by)
        opportunity.reload()
    missing = [criterion for criterion in opportunity.missing_criteria(stage)
               if criterion.key != "finalizing.purchase_order_recorded"
               or opportunity.stage == Stage.FINALIZING]
    assert not missing, missing


# The smallest file every PDF reader recognises as one.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def a_pdf(name: str = "order.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def plan_call(opportunity: Opportunity, *, by=None, days_ahead: int = 3, **details):
    """Plan a call with the customer `days_ahead` days from now."""
    return opportunity.log_activity(
        by=by or opportunity.owner, kind=details.pop("kind", ActivityKind.CALL),
        at=details.pop("at", timezone.now() + timedelta(days=days_ahead)),
        subject=details.pop("subject", "Detail session"), **details,
    )


def accept_close_plan(opportunity: Opportunity, *, by=None) -> ClosePlan:
    """A close plan of one step owned by a contact, accepted by both sides, the customer
    through a share link."""
    by = by or opportunity.owner
    today = timezone.localdate()
    contact = ContactFactory(account=opportunity.account)
    if opportunity.current_close_plan() is None:
        opportunity.save_close_plan(by=by, target_signature_date=today + timedelta(days=60))
    opportunity.add_plan_step(by=by, title="Order signed by the CFO",
                              due_date=today + timedelta(days=30), owner_contact=contact)
    opportunity.accept_close_plan(by=by)
    link, _token = opportunity.share_close_plan(contact, by=by)
    opportunity.close_plan.accept_by_customer(link=link)
    opportunity.reload()
    return opportunity.close_plan


def record_order(opportunity: Opportunity, *, by=None, **overrides) -> PurchaseOrder:
    """Record a purchase order matching the offer (or the amount, without one)."""
    offer = opportunity.current_offer()
    today = timezone.localdate()
    details = {
        "number": "PO-4711", "amount": offer.total() if offer else opportunity.amount,
        "currency": opportunity.currency, "document": a_pdf(), "terms": "ours",
        "service_start": offer.service_start if offer else today,
        "service_end": offer.service_end if offer else today + timedelta(days=364),
        "lines": [line.pk for line in offer.current_lines()] if offer else [],
        **overrides,
    }
    return opportunity.record_purchase_order(by=by or opportunity.owner, **details)


def approve(opportunity: Opportunity, by) -> Opportunity:
    """Sales ops approve the pending order: the opportunity closes."""
    opportunity.approve_order(by=by, confirmed=set(ReviewCheck.values))
    return opportunity


def advance(opportunity: Opportunity, target: Stage, *, by=None) -> Opportunity:
    """Bring an opportunity forward to `target` through every gate, as a rep would."""
    by = by or opportunity.owner
    target = Stage(target)
    while opportunity.stage != target:
        satisfy_gate(opportunity, by=by)
        following = ORDERED_STAGES[ORDERED_STAGES.index(Stage(opportunity.stage)) + 1]
        opportunity.move_to(following, by=by, via=Via.PAGE)
    return opportunity


ALL_TICKED_CRITERIA = [key for key, c in CRITERIA.items() if c.kind == CriterionKind.TICKED]


@dataclass
class Cast:
    """The people around one team: its rep and manager, a colleague, a BDR, sales ops, and
    a manager of another team."""

    rep: User
    colleague: User
    manager: User
    bdr: User
    sales_ops: User
    other_manager: User


def make_cast() -> Cast:
    rep = RepFactory()
    return Cast(
        rep=rep,
        colleague=RepFactory(team=rep.team),
        manager=ManagerFactory(team=rep.team),
        bdr=BdrFactory(team=rep.team),
        sales_ops=SalesOpsFactory(),
        other_manager=ManagerFactory(),
    )


def stored_state(opportunity: Opportunity) -> dict:
    """Everything a move may write about one opportunity, re-read from the database."""
    pk = opportunity.pk
    return {
        "row": Opportunity.objects.filter(pk=pk).values().get(),
        "ticks": list(CriterionTick.objects.filter(opportunity_id=pk).order_by("pk").values()),
        "committee": list(
            CommitteeMember.objects.filter(opportunity_id=pk).order_by("pk").values()
        ),
        "stage_changes": list(
            StageChange.objects.filter(opportunity_id=pk).order_by("pk").values()
        ),
        "field_changes": list(
            FieldChange.objects.filter(opportunity_id=pk).order_by("pk").values()
        ),
        "notifications": list(Notification.objects.order_by("pk").values_list("pk", flat=True)),
    }
