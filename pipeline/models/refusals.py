"""Refusals: every one carries a message a person can act on, and changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext

from pipeline.process import Criterion, Stage

if TYPE_CHECKING:
    from pipeline.models.opportunity import Opportunity

# Reasons, notes and evidence: room for a few paragraphs, not for a pasted document.
TEXT_LENGTH = 2000


class ChangeRefused(Exception):
    """A change to an opportunity was refused; nothing was written."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidChange(ChangeRefused):
    """The request itself is wrong: a move the process does not allow, a missing reason."""


class ChangeForbidden(ChangeRefused):
    """The user's role does not allow this change."""

    status_code = 403


class Conflict(ChangeRefused):
    """Someone changed the opportunity since the user loaded it."""

    status_code = 409

    def __init__(self, message: str, *, opportunity: Opportunity):
        super().__init__(message)
        self.opportunity = opportunity


class ContactInUse(ChangeRefused):
    """An open opportunity still relies on the contact (see archive_contact)."""

    status_code = 409


class GateNotMet(ChangeRefused):
    """The exit criteria of `stage` do not hold, so the opportunity cannot leave it."""

    status_code = 422

    def __init__(self, message: str, *, stage: Stage, missing: list[Criterion]):
        super().__init__(message)
        self.stage = stage
        self.missing = missing


def within_limit(text: str, what: str) -> str:
    """The text, or a refusal saying how long it may be (TEXT_LENGTH)."""
    if len(text) > TEXT_LENGTH:
        raise InvalidChange(gettext("%(what)s has %(length)d characters; at most %(limit)d fit.")
                            % {"what": what, "length": len(text), "limit": TEXT_LENGTH})
    return text
