"""The pipeline's models, one idea a module; every name is importable from here.

- `opportunity`: the opportunity and `move_to`, the one door for every stage change;
- `checklist`: ticks, the champion and the committee, and the methods that change them;
- `timeouts`: stage timeouts, extensions, the sweeps' claims;
- `history`: stage changes and field changes, append-only;
- `queries`: visibility, the board's filters and columns, totals;
- `refusals`, `choices`, `contacts`: what the others share.
"""

from pipeline.models.checklist import CommitteeMember, CriterionTick
from pipeline.models.choices import OpportunityType, Source, Via
from pipeline.models.contacts import archive_contact
from pipeline.models.history import FieldChange, StageChange
from pipeline.models.opportunity import Opportunity
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
from pipeline.models.timeouts import DeadlineExtension, StageTimeout

__all__ = [
    "CARD_FIELDS", "TEXT_LENGTH", "ChangeForbidden", "ChangeRefused", "CommitteeMember",
    "Conflict", "ContactInUse", "CriterionTick", "DeadlineExtension", "FieldChange",
    "GateNotMet", "InvalidChange", "Opportunity", "OpportunityQuerySet", "OpportunityType",
    "PerGroup", "Source", "StageChange", "StageTimeout", "Totals", "Via", "archive_contact",
    "count_progress", "within_limit",
]
