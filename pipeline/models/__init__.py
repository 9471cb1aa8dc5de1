"""The pipeline's models, one idea a module; every name is importable from here.

- `opportunity`: the opportunity and `move_to`, the one door for every stage change;
- `moves`: how each kind of move is carried out once `move_to` has locked and checked;
- `checklist`: ticks, the champion and the committee, and the methods that change them;
- `timeouts`: stage timeouts, extensions, the sweeps' claims;
- `parking`: the timeout sweep parking overdue opportunities in batches;
- `dead_pool`: BDRs' claims on dead opportunities, and where a reopened one returns;
- `activities`: calls, meetings and e-mails with the customer, planned or done;
- `extensions`: the strong reasons (customer activity, a doubled amount) that extend a
  deadline once per stage visit, and sales ops' activity rule;
- `history`: stage changes and field changes, append-only;
- `imported`: imports from other CRMs, and how an imported opportunity enters its stage;
- `hygiene`: the flags on forecast entries a manager should question;
- `queries`: visibility, the board's filters and columns, totals;
- `refusals`, `choices`, `contacts`: what the others share.
"""

from pipeline.models.activities import Activity, ActivityKind, ActivityStatus
from pipeline.models.checklist import CommitteeMember, CriterionTick
from pipeline.models.choices import OpportunityType, Source, Via
from pipeline.models.close_plans import (
    ClosePlan,
    ClosePlanEvent,
    ClosePlanStep,
    ShareLink,
    StepStatus,
)
from pipeline.models.contacts import archive_contact
from pipeline.models.dead_pool import DeadPoolClaim
from pipeline.models.extensions import ActivityRule
from pipeline.models.history import FieldChange, StageChange
from pipeline.models.hygiene import HygieneFlag
from pipeline.models.imported import ImportBatch, ImportedOpportunity, ImportStatus, Vendor
from pipeline.models.offers import LineKind, Offer, OfferLine, Terms
from pipeline.models.opportunity import Opportunity
from pipeline.models.orders import (
    HandoffKind,
    HandoffTask,
    Outcome,
    PurchaseOrder,
    ReviewCheck,
    recognise_document,
)
from pipeline.models.queries import (
    CARD_FIELDS,
    OpportunityQuerySet,
    PerGroup,
    Totals,
    count_progress,
)
from pipeline.models.refusals import (
    TEXT_LENGTH,
    ChangeForbidden,
    ChangeRefused,
    Conflict,
    ContactInUse,
    GateNotMet,
    InvalidChange,
    within_limit,
)
from pipeline.models.timeouts import DeadlineExtension, ExtensionKind, StageTimeout

__all__ = [
    "Activity", "ActivityKind", "ActivityRule", "ActivityStatus", "ExtensionKind",
    "CARD_FIELDS", "ChangeForbidden", "ChangeRefused", "ClosePlan", "ClosePlanEvent",
    "ClosePlanStep", "CommitteeMember", "Conflict", "ContactInUse", "CriterionTick",
    "DeadPoolClaim", "DeadlineExtension", "FieldChange", "GateNotMet", "HandoffKind",
    "HandoffTask", "HygieneFlag", "ImportBatch", "ImportStatus", "ImportedOpportunity",
    "InvalidChange", "LineKind", "Offer", "OfferLine",
    "Opportunity", "OpportunityQuerySet",
    "OpportunityType", "Outcome", "PerGroup", "PurchaseOrder", "ReviewCheck", "ShareLink",
    "Source", "StageChange", "StageTimeout", "StepStatus", "TEXT_LENGTH", "Terms", "Totals",
    "Vendor", "Via", "archive_contact", "count_progress", "recognise_document", "within_limit",
]
