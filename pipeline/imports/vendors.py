"""What each system's CSV export calls the columns an import reads, from its documented
export formats, and the stage names it ships with."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from pipeline.models.imported import Vendor
from pipeline.process import Stage

# The fields an import reads; the first five every file must have.
REQUIRED = ("name", "account", "stage", "amount", "close_date")


@dataclass(frozen=True)
class Layout:
    """A system's columns: for each field, the titles it may have in an export (reports
    and exports are configurable, so some fields go by more than one name)."""

    columns: dict[str, tuple[str, ...]]
    # The system's stock stage names (lower case) and ours, offered as the first mapping.
    stages: dict[str, Stage] = field(default_factory=dict)
    # A status column whose values stand for the stage (Pipedrive keeps won and lost
    # apart from the stage the deal was in).
    status_as_stage: tuple[str, ...] = ()

    def find(self, header: list[str]) -> dict[str, int]:
        """Each field's column in this header (case and spacing aside)."""
        positions = {" ".join(title.lower().split()): index
                     for index, title in reversed(list(enumerate(header)))}
        found = {}
        for name, titles in self.columns.items():
            for title in titles:
                if title.lower() in positions:
                    found[name] = positions[title.lower()]
                    break
        return found

    def missing(self, header: list[str]) -> list[str]:
        """The titles of required columns this header lacks."""
        found = self.find(header)
        return [self.columns[name][0] for name in REQUIRED if name not in found]


LAYOUTS: dict[str, Layout] = {
    # Salesforce: an opportunity report exported as "Details only" (CSV); the contact
    # columns come from the "Opportunities with Contact Roles" report type.
    Vendor.SALESFORCE: Layout(
        columns={
            "id": ("Opportunity ID", "Opportunity ID (18)"),
            "name": ("Opportunity Name",),
            "account": ("Account Name",),
            "account_id": ("Account ID",),
            "stage": ("Stage",),
            "amount": ("Amount",),
            "currency": ("Opportunity Currency", "Amount Currency", "Currency"),
            "close_date": ("Close Date",),
            "owner": ("Opportunity Owner",),
            "type": ("Type",),
            "lead_source": ("Lead Source",),
            "next_step": ("Next Step",),
            "contact_id": ("Contact ID",),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "email": ("Email",),
            "title": ("Title",),
        },
        stages={
            "prospecting": Stage.IDENTIFYING,
            "qualification": Stage.DISCOVERING,
            "needs analysis": Stage.DISCOVERING,
            "value proposition": Stage.VALIDATING,
            "id. decision makers": Stage.VALIDATING,
            "perception analysis": Stage.CONFIRMING,
            "proposal/price quote": Stage.NEGOTIATING,
            "negotiation/review": Stage.NEGOTIATING,
            "closed won": Stage.CLOSED,
            "closed lost": Stage.DEAD,
        },
    ),
    # HubSpot: Sales > Deals > Export, "Properties on this view" plus associations.
    Vendor.HUBSPOT: Layout(
        columns={
            "id": ("Record ID", "Deal ID"),
            "name": ("Deal Name",),
            "account": ("Associated Company (Primary)", "Associated Company",
                        "Company name"),
            "account_id": ("Associated Company IDs (Primary)", "Associated Company IDs"),
            "stage": ("Deal Stage",),
            "amount": ("Amount",),
            "currency": ("Currency",),
            "close_date": ("Close Date",),
            "owner": ("Deal owner", "Deal Owner"),
            "type": ("Deal Type",),
            "lead_source": ("Original Source Type", "Original Traffic Source"),
            "next_step": ("Next step", "Next Step"),
            "contact": ("Associated Contact",),
            "contact_id": ("Associated Contact IDs",),
        },
        stages={
            "appointment scheduled": Stage.IDENTIFYING,
            "qualified to buy": Stage.DISCOVERING,
            "presentation scheduled": Stage.VALIDATING,
            "decision maker bought-in": Stage.CONFIRMING,
            "contract sent": Stage.NEGOTIATING,
            "closed won": Stage.CLOSED,
            "closed lost": Stage.DEAD,
        },
    ),
    # Pipedrive: Deals > Export; every column is named after its object, "Deal - Title".
    Vendor.PIPEDRIVE: Layout(
        columns={
            "id": ("Deal - ID",),
            "name": ("Deal - Title",),
            "account": ("Deal - Organization", "Organization - Name"),
            "account_id": ("Organization - ID",),
            "stage": ("Deal - Stage",),
            "status": ("Deal - Status",),
            "amount": ("Deal - Value",),
            "currency": ("Deal - Currency",),
            "close_date": ("Deal - Expected close date",),
            "owner": ("Deal - Owner",),
            "lead_source": ("Deal - Source origin", "Deal - Lead source"),
            "next_step": ("Deal - Next activity subject",),
            "contact": ("Deal - Contact person", "Person - Name"),
            "contact_id": ("Person - ID",),
            "email": ("Person - Email",),
            "title": ("Person - Job title",),
        },
        stages={
            "lead in": Stage.IDENTIFYING,
            "contact made": Stage.DISCOVERING,
            "needs defined": Stage.DISCOVERING,
            "demo scheduled": Stage.VALIDATING,
            "proposal made": Stage.CONFIRMING,
            "negotiations started": Stage.NEGOTIATING,
            "won": Stage.CLOSED,
            "lost": Stage.DEAD,
        },
        status_as_stage=("won", "lost"),
    ),
}


def missing_columns_message(vendor: str, missing: list[str]) -> str:
    return _("This file cannot be imported as %(vendor)s: it has no column %(columns)s. "
             "Export it again with these columns, or choose the system it came from.") % {
        "vendor": Vendor(vendor).label,
        "columns": ", ".join(f"“{title}”" for title in missing),
    }
