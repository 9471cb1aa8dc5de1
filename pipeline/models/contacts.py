"""Contacts an open opportunity relies on."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.models import (
    Contact,
    User,
)
from pipeline.models.opportunity import Opportunity
from pipeline.models.queries import OpportunityQuerySet
from pipeline.models.refusals import ContactInUse


def archive_contact(contact: Contact, *, by: User) -> None:
    """Archive a contact who left the customer or no longer matters. Nothing is deleted:
    closed and parked opportunities and the history keep the name; the account page and
    the champion and committee pickers no longer offer it.

    Refused while an open opportunity names the contact as champion or committee member:
    a deal must not rest on someone who is gone, so the rep replaces them there first.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.archived_at:
            return
        relying = Opportunity.objects.open().relying_on(contact)
        if relying.exists():
            raise ContactInUse(_still_relied_on(contact, relying.visible_to(by)))
        contact.archived_at = timezone.now()
        contact.save(update_fields=["archived_at"])


def _still_relied_on(contact: Contact, visible: OpportunityQuerySet) -> str:
    names = list(visible.order_by("name").values_list("name", flat=True)[:4])
    if not names:  # only other teams' opportunities: their names stay with them
        return gettext("%(contact)s is still the champion or a committee member of another "
                       "team's open opportunity. Ask its owner to name someone else first."
                       ) % {"contact": contact}
    shown = ", ".join(f"“{name}”" for name in names[:3]) + (", …" if len(names) > 3 else "")
    return gettext("%(contact)s is still the champion or a committee member of open "
                   "opportunities: %(names)s. Name someone else there first."
                   ) % {"contact": contact, "names": shown}
