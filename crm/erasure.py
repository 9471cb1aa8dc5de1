"""Erasing a contact on request (issue 13, Privacy): their personal data anonymised in
place, everything else (opportunities, history, figures) kept, the erasure logged.

Mixed into Contact. crm never imports the other apps, so the texts they keep (activity
notes, history reasons, close plan steps) are scrubbed by the callable the caller passes
in, inside the erasure's transaction: all of it happens, or none. The one door that
passes it is `pipeline.contact_privacy.erase_contact`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from crm.models import Contact, User

REASON_LENGTH = 500
PERSONAL_FIELDS = ("first_name", "last_name", "title", "email", "phone")

class ErasureRefused(Exception):
    """Why an erasure (or a change to an erased contact) was refused; nothing changed."""

    def __init__(self, message: str, status_code: int = 409):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class Scrubber:
    """Replaces what named the contact in free text with a neutral label: the full name
    (either order), the e-mail address, the phone number, and the last name as a word."""

    pattern: re.Pattern | None
    terms: tuple[str, ...]
    label: str

    @classmethod
    def for_contact(cls, contact: Contact, label: str, *, last_name_alone: bool = True
                    ) -> Scrubber:
        """`last_name_alone` only for texts about the contact's own account: elsewhere a
        common surname would also hit other people."""
        first, last = contact.first_name.strip(), contact.last_name.strip()
        phrases = {f"{first} {last}".strip(), f"{last}, {first}".strip(", "),
                   f"{last} {first}".strip(), contact.email.strip(), contact.phone.strip()}
        phrases = {phrase for phrase in phrases if len(phrase) >= 2}
        # Longest first, so "Anna Fischer" goes whole before "Fischer" alone would.
        alternatives = [re.escape(phrase) for phrase in sorted(phrases, key=len, reverse=True)]
        words = {last} if last_name_alone and len(last) >= 2 else set()
        alternatives += [rf"\b{re.escape(word)}\b" for word in words]
        pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
        return cls(pattern, tuple(sorted(phrases | words)), label)

    def __call__(self, text: str) -> str:
        if not text or self.pattern is None:
            return text or ""
        return self.pattern.sub(self.label, text)

    def mentions(self, text: str) -> bool:
        return bool(text) and self.pattern is not None and bool(self.pattern.search(text))

    def query(self, *fields: str) -> Q:
        """Rows where any of `fields` may mention the contact (icontains; `mentions` and
        the substitution decide exactly)."""
        found = Q(pk__in=[])
        for field in fields:
            for term in self.terms:
                found |= Q(**{f"{field}__icontains": term})
        return found

    def rewrite(self, queryset: models.QuerySet, fields: tuple[str, ...]) -> list[int]:
        """Scrub `fields` of the rows of `queryset` that mention the contact, one UPDATE
        per changed row; returns the primary keys of the rows changed."""
        changed = []
        if self.pattern is None:
            return changed
        for row in queryset.filter(self.query(*fields)).values("pk", *fields):
            updates = {field: self(row[field]) for field in fields
                       if row[field] and self(row[field]) != row[field]}
            if updates:
                queryset.model.objects.filter(pk=row["pk"]).update(**updates)
                changed.append(row["pk"])
        return changed


class ContactErasure(models.Model):
    """The log of erasures: who erased which contact, when and why. Append-only: rows are
    neither changed nor deleted, and the reason was scrubbed of the contact's name."""

    contact = models.ForeignKey("crm.Contact", verbose_name=_("contact"),
                                on_delete=models.PROTECT, related_name="erasures")
    erased_at = models.DateTimeField(_("erased"), default=timezone.now)
    erased_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("erased by"),
                                  on_delete=models.PROTECT, null=True, related_name="+")
    reason = models.CharField(_("reason"), max_length=REASON_LENGTH)

    class Meta:
        verbose_name = _("contact erasure")
        verbose_name_plural = _("contact erasures")
        ordering = ["-erased_at", "-pk"]

    def __str__(self) -> str:
        return gettext("Contact #%(id)d erased at %(when)s") % {
            "id": self.contact_id, "when": self.erased_at}

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ErasureRefused(gettext("The log of erasures cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ErasureRefused(gettext("The log of erasures cannot be changed."))


class Erasable:
    """The contact's side of an erasure. Contact has `erased_at`; a check constraint keeps
    an erased contact's personal fields empty, and `save` refuses to touch one."""

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    def erased_label(self) -> str:
        """What stands for the contact where the name stood, in the company's language."""
        with translation.override(settings.LANGUAGE_CODE):
            return gettext("[erased contact #%d]") % self.pk

    def erase(self, *, by: User | None, reason: str,
              scrub_elsewhere: Callable[[Contact, Scrubber], None]) -> ContactErasure:
        """Anonymise this contact in place, with every text that named them, and log it.
        `scrub_elsewhere(contact, scrub)` cleans the texts other apps keep about the
        contact's account, in the same transaction. Cannot be undone. Raises
        ErasureRefused (403 for who may not, 400 without a reason, 409 when already
        erased), and then nothing has changed."""
        from crm.models import Contact, Notification

        if by is not None and not by.handles_privacy_requests:
            raise ErasureRefused(gettext("Only sales ops erase contacts."), 403)
        reason = " ".join((reason or "").split())
        if not reason:
            raise ErasureRefused(gettext("Say why the contact is erased (who asked, and "
                                         "when)."), 400)
        if len(reason) > REASON_LENGTH:
            raise ErasureRefused(gettext("The reason is longer than %d characters.")
                                 % REASON_LENGTH, 400)
        with transaction.atomic():
            contact = Contact.objects.select_for_update().get(pk=self.pk)
            if contact.erased_at is not None:
                raise ErasureRefused(gettext("%s was erased already.") % contact)
            label = contact.erased_label()
            scrub = Scrubber.for_contact(contact, label)
            anywhere = Scrubber.for_contact(contact, label, last_name_alone=False)
            now = timezone.now()
            Contact.objects.filter(pk=contact.pk).update(
                **dict.fromkeys(PERSONAL_FIELDS, ""), erased_at=now,
                archived_at=contact.archived_at or now,
            )
            contact.refresh_from_db()
            anywhere.rewrite(Notification.objects.all(), ("subject", "body"))
            LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Contact),
                                    object_id=str(contact.pk)).update(object_repr=label)
            anywhere.rewrite(LogEntry.objects.all(), ("object_repr", "change_message"))
            scrub_elsewhere(contact, scrub)
            erasure = ContactErasure.objects.create(contact=contact, erased_at=now,
                                                    erased_by=by, reason=scrub(reason))
        self.refresh_from_db()
        return erasure

    def refuse_if_erased(self) -> None:
        from crm.models import Contact

        if self.pk and Contact.objects.filter(pk=self.pk, erased_at__isnull=False).exists():
            raise ErasureRefused(gettext("An erased contact cannot be changed or restored."))
