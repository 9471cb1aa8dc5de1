"""What the API's opportunity endpoints read and write, as OpenAPI sees it."""


from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from pipeline.models import LineKind, OpportunityType, ReviewCheck, Source, StepStatus, Terms
from pipeline.models.activities import ActivityKind
from pipeline.process import CRITERIA, PROCESS, CriterionKind, DeadReason, Stage

Money = Decimal


class CriterionOut(Schema):
    key: str
    label: str
    kind: str
    met: bool
    state: str | None = None
    ticked_by: str | None = None
    ticked_at: datetime | None = None
    note: str | None = None


class MemberOut(Schema):
    contact: int
    name: str
    added_at: datetime
    confirmed_on: date | None


class OpportunityOut(Schema):
    id: int
    name: str
    account: int = Field(..., alias="account_id")
    account_name: str
    owner: int = Field(..., alias="owner_id")
    owner_name: str
    type: str
    source: str
    amount: Money
    currency: str
    expected_close_date: date
    next_step: str
    next_step_date: date | None
    stage: str
    stage_label: str
    probability: int
    forecast_category: str
    stage_entered_at: datetime
    stage_deadline: datetime | None
    champion: int | None = Field(None, alias="champion_id")
    champion_confirmed_at: datetime | None
    version: int
    changed_at: datetime

    @staticmethod
    def resolve_account_name(opportunity) -> str:
        return opportunity.account.name

    @staticmethod
    def resolve_owner_name(opportunity) -> str:
        return str(opportunity.owner)

    @staticmethod
    def resolve_stage_label(opportunity) -> str:
        return str(Stage(opportunity.stage).label)

    @staticmethod
    def resolve_forecast_category(opportunity) -> str:
        return opportunity.forecast_category.value


class OpportunityDetail(OpportunityOut):
    exit_criteria: list[CriterionOut]
    missing_criteria: list[str]
    committee: list[MemberOut]
    move_targets: list[str] = Field(..., description="Stages this user may ask to move to; "
                                    "a gate may still refuse a forward move.")

    @staticmethod
    def resolve_exit_criteria(opportunity) -> list[dict]:
        ticks = opportunity.active_tick_map()
        criteria = []
        for criterion in PROCESS[Stage(opportunity.stage)].exit_criteria:
            tick = ticks.get(criterion.key)
            criteria.append({
                "key": criterion.key, "label": str(criterion.label),
                "kind": criterion.kind.value,
                "met": opportunity.criterion_met(criterion, ticks),
                "state": tick.state if tick else None,
                "ticked_by": str(tick.ticked_by) if tick else None,
                "ticked_at": tick.ticked_at if tick else None,
                "note": tick.note if tick else None,
            })
        return criteria

    @staticmethod
    def resolve_missing_criteria(opportunity) -> list[str]:
        return [criterion.key for criterion in opportunity.missing_criteria()]

    @staticmethod
    def resolve_committee(opportunity) -> list[dict]:
        return [{"contact": member.contact_id, "name": str(member.contact),
                 "added_at": member.added_at, "confirmed_on": member.confirmed_on}
                for member in opportunity.active_committee()]

    @staticmethod
    def resolve_move_targets(opportunity, context) -> list[str]:
        user = context["request"].user
        return [stage.value for stage in opportunity.move_targets_for(user)]


class OpportunityIn(Schema):
    account: int = Field(..., ge=1, examples=[1])
    owner: int | None = Field(None, ge=1, description="Managers open opportunities for "
                              "their team; others for themselves (leave out).")
    name: str = Field(..., max_length=200, examples=["Initech renewal"])
    type: OpportunityType = OpportunityType.NEW_BUSINESS
    source: Source = Field(..., examples=[Source.INBOUND])
    amount: Money = Field(..., ge=0, max_digits=14, decimal_places=2, examples=["12000.00"])
    currency: str = Field(..., min_length=3, max_length=3, examples=["EUR"])
    expected_close_date: date = Field(..., examples=["2030-06-30"])
    next_step: str = Field("", max_length=300)
    next_step_date: date | None = None


class OpportunityPatch(Schema):
    name: str | None = Field(None, max_length=200, examples=["Initech renewal, 3 years"])
    type: OpportunityType | None = None
    source: Source | None = None
    amount: Money | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3)
    expected_close_date: date | None = None
    next_step: str | None = Field(None, max_length=300)
    next_step_date: date | None = None
    owner: int | None = Field(None, ge=1, description="A manager reassigns.")


class MoveIn(Schema):
    stage: Stage = Field(..., examples=[Stage.DEAD])
    reason: str = Field("", max_length=2000, description="Needed for moves back, to and "
                        "out of Dead.", examples=["No budget this year"])
    dead_reason: DeadReason | None = Field(None, examples=[DeadReason.values[0]])
    account_executive: int | None = Field(None, ge=1, description="Who takes over when a "
                                          "BDR's opportunity leaves stage 1.")


# The criteria a person ticks; the others are derived from data (process.py).
TICKED = tuple(key for key, criterion in CRITERIA.items()
               if criterion.kind == CriterionKind.TICKED)
TickedCriterion = Literal[TICKED]


class TickIn(Schema):
    criterion: TickedCriterion = Field(..., examples=[TICKED[0]])
    note: str = Field(..., max_length=2000, description="The evidence, or why it is not "
                      "required.", examples=["Pain described in the call of 3 March"])
    not_required: bool = False


class MissingCriterion(Schema):
    key: str
    label: str


class GateRefusal(Schema):
    detail: str
    stage: str
    missing: list[MissingCriterion]


class StageChangeOut(Schema):
    id: int
    from_stage: str
    to_stage: str
    changed_at: datetime
    changed_by: int | None = Field(None, alias="changed_by_id")
    via: str
    reason: str
    dead_reason: str
    handed_to: int | None = Field(None, alias="handed_to_id")
    is_undo: bool


class FieldChangeOut(Schema):
    id: int
    field: str
    old_value: str
    new_value: str
    changed_at: datetime
    changed_by: int | None = Field(None, alias="changed_by_id")
    via: str


class HistoryOut(Schema):
    stage_changes: list[StageChangeOut]
    field_changes: list[FieldChangeOut]


class ActivityOut(Schema):
    id: int
    kind: str
    status: str
    at: datetime
    minutes: int
    subject: str
    notes: str
    contacts: list[int]
    logged_at: datetime
    logged_by: int | None = Field(None, alias="logged_by_id")
    closed_at: datetime | None


class ActivityIn(Schema):
    kind: ActivityKind = Field(..., examples=[ActivityKind.CALL])
    at: datetime = Field(..., examples=["2026-01-15T10:00:00Z"])
    subject: str = Field(..., max_length=200, examples=["Discovery call"])
    notes: str = Field("", max_length=2000)
    minutes: int = Field(30, ge=1, le=24 * 60)
    done: bool = Field(False, description="Took place already (else planned ahead).",
                       examples=[True])
    contacts: list[int] = Field([], max_length=50)


class StepOut(Schema):
    id: int
    position: int
    title: str
    owner_user: int | None = Field(None, alias="owner_user_id")
    owner_contact: int | None = Field(None, alias="owner_contact_id")
    due_date: date
    status: str
    done_on: date | None


class ShareLinkOut(Schema):
    id: int
    contact: int = Field(..., alias="contact_id")
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ClosePlanOut(Schema):
    target_signature_date: date
    rep_accepted_at: datetime | None
    customer_accepted_at: datetime | None
    is_accepted: bool
    steps: list[StepOut]
    links: list[ShareLinkOut] = Field(..., description="Links that show the plan to a "
                                      "contact, who accepts it there; newest first.")


class OfferLineOut(Schema):
    id: int
    kind: str
    description: str
    quantity: Decimal
    list_price: Money
    discount_percent: Decimal
    net_price: Money


class OfferOut(Schema):
    service_start: date
    service_end: date
    payment_terms: str
    terms: str
    agreed_at: datetime | None
    total: Money
    lines: list[OfferLineOut]


class PurchaseOrderOut(Schema):
    id: int
    number: str
    amount: Money
    currency: str
    document_name: str
    terms: str
    service_start: date
    service_end: date
    recorded_at: datetime
    recorded_by: int | None = Field(None, alias="recorded_by_id")
    outcome: str
    failed_checks: list[str]
    review_note: str
    reviewed_at: datetime | None


# --- writes that meet the later gates: committee, champion, offer, order, review ---


class ChampionIn(Schema):
    contact: int | None = Field(..., ge=1, description="A contact of the account; null "
                                "withdraws the champion.", examples=[1])
    confirmed: bool = Field(True, description="They told you they are convinced (the "
                            "gate counts only a confirmed champion).")


class CommitteeIn(Schema):
    contact: int = Field(..., ge=1, description="A contact of the account.", examples=[1])


class PreferredVendorIn(Schema):
    on: date | None = Field(None, description="The day they said so; today when left out.")


class OfferIn(Schema):
    service_start: date = Field(..., examples=["2030-01-01"])
    service_end: date = Field(..., examples=["2030-12-31"])
    payment_terms: str = Field(..., max_length=200, examples=["30 days net"])
    terms: Terms = Terms.OURS


class OfferLineIn(Schema):
    kind: LineKind = LineKind.PRODUCT
    description: str = Field(..., max_length=200, examples=["Licences"])
    quantity: Decimal = Field(..., gt=0, max_digits=10, decimal_places=2, examples=["10"])
    list_price: Money = Field(..., ge=0, max_digits=14, decimal_places=2,
                              examples=["1000.00"])
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5,
                                      decimal_places=2)


class PurchaseOrderIn(Schema):
    number: str = Field(..., max_length=100, examples=["PO-4711"])
    amount: Money = Field(..., ge=0, max_digits=14, decimal_places=2, examples=["10000.00"])
    currency: str = Field(..., min_length=3, max_length=3, examples=["EUR"])
    terms: Terms = Terms.OURS
    service_start: date = Field(..., examples=["2030-01-01"])
    service_end: date = Field(..., examples=["2030-12-31"])
    lines: list[int] = Field([], max_length=200, description="The offer lines it covers.")


class ApprovalIn(Schema):
    confirmed: list[ReviewCheck] = Field(..., max_length=len(ReviewCheck.values),
                                         description="Every check, confirmed.",
                                         examples=[ReviewCheck.values])


class RejectionIn(Schema):
    failed: list[ReviewCheck] = Field(..., min_length=1, max_length=len(ReviewCheck.values),
                                      examples=[[ReviewCheck.PRICES]])
    note: str = Field(..., min_length=1, max_length=2000,
                      examples=["The discount on line 2 is not the one agreed."])


class ClosePlanIn(Schema):
    target_signature_date: date = Field(..., examples=["2030-06-30"])


class PlanStepIn(Schema):
    title: str = Field(..., max_length=200, examples=["Order signed by the CFO"])
    due_date: date = Field(..., examples=["2030-05-31"])
    owner_user: int | None = Field(None, ge=1, description="Someone of the owner's team; "
                                   "or name owner_contact.")
    owner_contact: int | None = Field(None, ge=1, description="A contact of the account.")
    status: StepStatus = StepStatus.NOT_STARTED
    material: bool | None = Field(None, description="Once both sides accepted: does the "
                                  "change withdraw the customer's acceptance?")


class PlanStepPatch(Schema):
    title: str | None = Field(None, max_length=200)
    due_date: date | None = None
    owner_user: int | None = Field(None, ge=1)
    owner_contact: int | None = Field(None, ge=1)
    status: StepStatus | None = Field(None, examples=[StepStatus.DONE])
    material: bool | None = Field(None, description="Once both sides accepted: does the "
                                  "change withdraw the customer's acceptance? Progress "
                                  "(the status) never does.")


class ShareLinkIn(Schema):
    contact: int = Field(..., ge=1, description="A current contact of the account.",
                         examples=[1])
    days: int = Field(30, ge=1, le=90, description="How long the link works.")


class ShareLinkMade(ShareLinkOut):
    address: str = Field(..., description="The link to send the contact: shown only now, "
                         "only its hash is kept.")
