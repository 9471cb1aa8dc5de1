"""How each kind of stage change is carried out, once `Opportunity.move_to` has locked the
row and checked the permission: forward through every gate, back with a reason, parked as
dead, reopened from the dead pool, out of Pending by sales ops' review. Each one runs the
django-fsm transition, enters the new stage (timestamps, deadline) and writes the
StageChange in the same transaction (stack-notes: post_transition fires before save)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.translation import gettext

from crm.models import Notification, Role, User
from pipeline.models.choices import Via
from pipeline.models.history import FieldChange, StageChange, _as_text, move_message
from pipeline.models.refusals import GateNotMet, InvalidChange
from pipeline.models.timeouts import StageTimeout
from pipeline.process import DeadReason, Stage


class Moves:
    """The mixin of Opportunity that carries out a move; only `move_to` calls it."""

    def _perform_move(self, target: Stage, *, by, via, reason, dead_reason,
                      account_executive, is_undo, now) -> list[StageChange]:
        source = Stage(self.stage)
        if target == source:
            raise InvalidChange(gettext("The opportunity is already in %s.") % source.label)
        if source == Stage.CLOSED:
            raise InvalidChange(gettext("A closed opportunity is final."))
        if target == Stage.DEAD:
            return [self._park_as_dead(by, via, reason, dead_reason, now)]
        if source == Stage.DEAD:
            return [self._reopen_from_pool(target, by, via, reason, now)]
        if source == Stage.PENDING:
            return [self._leave_pending(target, by, via, reason, now)]
        if target == Stage.CLOSED:
            raise InvalidChange(
                gettext("Only sales ops' approval of a pending order closes an opportunity.")
            )
        if target.order > source.order:
            return self._advance_to(target, by, via, reason, account_executive, is_undo, now)
        return [self._move_back(target, by, via, reason, is_undo, now)]

    def _advance_to(self, target, by, via, reason, account_executive, is_undo, now):
        changes = []
        handed_to = None
        if self.stage == Stage.IDENTIFYING:
            handed_to = self._hand_over_to(account_executive, by, via, now)
        while self.stage != target:
            missing = self.missing_criteria()
            if missing:
                stage = Stage(self.stage)
                raise GateNotMet(
                    gettext("“%(name)s” cannot leave %(stage)s yet: %(missing)s.")
                    % {
                        "name": self.name,
                        "stage": stage.label,
                        "missing": "; ".join(str(c.label) for c in missing),
                    },
                    stage=stage,
                    missing=missing,
                )
            snapshot = self.checklist_snapshot()
            source = Stage(self.stage)
            self._advance()
            if source == Stage.NEGOTIATING:
                self._agree_offer(now)
            changes.append(self._record(source, by, via, reason, snapshot, now,
                                        handed_to=handed_to, is_undo=is_undo))
            handed_to = None
        return changes

    def _hand_over_to(self, account_executive, by, via, now) -> User | None:
        """Leaving stage 1 names the account executive who takes over from the BDR; the
        one handed to, or None when the owner carries on (no hand-over to record)."""
        if account_executive is None:
            if self.owner.is_rep:
                return None
            raise InvalidChange(
                gettext("Name the account executive who takes over when leaving %s.")
                % Stage.IDENTIFYING.label
            )
        if not account_executive.is_rep or not account_executive.is_active:
            raise InvalidChange(
                gettext("%s is not an account executive.") % account_executive
            )
        if account_executive.team_id != self.owner.team_id and not (
            by is None or by.is_superuser
        ):
            raise InvalidChange(
                gettext("%s is not in the team of this opportunity; a manager reassigns "
                        "across teams.") % account_executive
            )
        if account_executive.pk == self.owner_id:
            return None
        self._record_field_change("owner", self.owner, account_executive, by, via, now)
        self.owner = account_executive
        return account_executive

    def _move_back(self, target, by, via, reason, is_undo, now):
        if target.order is None or target.order >= self.stage_rule.order:
            raise InvalidChange(gettext("That is not a move back."))
        if not reason:
            raise InvalidChange(gettext("Say why the opportunity moves back."))
        snapshot = self.checklist_snapshot()
        source = Stage(self.stage)
        self._step_back(target)
        if not is_undo:  # an undo restores the state before the move, ticks included
            self._reopen_criteria_from(target, by, now)
        if target.order <= Stage.NEGOTIATING.order:
            self._reopen_offer()
        return self._record(source, by, via, reason, snapshot, now, is_undo=is_undo)

    def _park_as_dead(self, by, via, reason, dead_reason, now):
        if self.stage == Stage.DEAD:
            raise InvalidChange(gettext("The opportunity is already dead."))
        try:
            dead_reason = DeadReason(dead_reason)
        except ValueError:
            raise InvalidChange(gettext("Choose why the opportunity is dead.")) from None
        if not reason:
            raise InvalidChange(gettext("Add a note on why the opportunity is dead."))
        snapshot = self.checklist_snapshot()
        source = Stage(self.stage)
        self._park()
        self.dead_reason = dead_reason
        self.dead_note = reason
        return self._record(source, by, via, reason, snapshot, now, dead_reason=dead_reason)

    def _reopen_from_pool(self, target, by, via, reason, now):
        """Recently dead, back where it died with that stage's and later gates open again
        and the earlier ones' evidence kept; otherwise to Identifying, every gate open, and
        a BDR reopening it owns it (docs/decisions.md, "Reopening from the dead pool")."""
        if not reason:
            raise InvalidChange(gettext("Say why the opportunity is reopened."))
        self._check_reopening(target, by, now)
        snapshot = self.checklist_snapshot()
        self._reopen(target)
        self._reopen_criteria_from(target, by, now)
        if target.order <= Stage.NEGOTIATING.order:
            self._reopen_offer()
        self.dead_reason = ""
        self.dead_note = ""
        if (target == Stage.IDENTIFYING and by is not None and by.is_bdr
                and by.pk != self.owner_id):
            self._record_field_change("owner", self.owner, by, by, via, now)
            self.owner = by
        self._end_claim(by, now)
        return self._record(Stage.DEAD, by, via, reason, snapshot, now)

    def _leave_pending(self, target, by, via, reason, now):
        snapshot = self.checklist_snapshot()
        if target in (Stage.CLOSED, Stage.FINALIZING) and via != Via.REVIEW:
            # approve_order and reject_order record the review with the move.
            raise InvalidChange(gettext("Sales ops approve or reject a pending order on its "
                                        "review page."))
        if target == Stage.CLOSED:
            self._approve()
        elif target == Stage.FINALIZING:
            if not reason:
                raise InvalidChange(gettext("Say which checks failed and why."))
            self._reject()
        else:
            raise InvalidChange(
                gettext("A pending opportunity is approved, rejected or, by a manager, "
                        "parked as dead.")
            )
        return self._record(Stage.PENDING, by, via, reason, snapshot, now)

    def _enter_stage(self, now: datetime) -> None:
        self.stage_entered_at = now
        self.amount_at_stage_entry = self.amount
        days = StageTimeout.days_for(Stage(self.stage))
        self.stage_deadline = now + timedelta(days=days) if days else None
        self.deadline_warned_at = None

    def _record(self, source, by, via, reason, snapshot, now, *, dead_reason="",
                handed_to=None, is_undo=False) -> StageChange:
        self._enter_stage(now)
        return StageChange.objects.create(
            opportunity=self, from_stage=source, to_stage=self.stage, changed_by=by,
            changed_at=now, via=via, reason=reason, dead_reason=dead_reason,
            handed_to=handed_to, checklist=snapshot, is_undo=is_undo,
        )

    def _record_field_change(self, field_name, old, new, by, via, now) -> None:
        FieldChange.objects.create(
            opportunity=self, field=field_name, old_value=_as_text(old),
            new_value=_as_text(new), changed_by=by, changed_at=now, via=via,
        )

    def _notify_about_move(self, changes: list[StageChange], by: User | None) -> None:
        if not changes:
            return
        first, last = changes[0], changes[-1]

        def write():
            return move_message(self.name, by, first.from_stage, last.to_stage, last.reason)

        recipients = set()
        if by is None or by.pk != self.owner_id:
            recipients.add(self.owner)
        if last.to_stage == Stage.PENDING:
            recipients.update(User.objects.filter(groups__name=Role.SALES_OPS, is_active=True))
        for recipient in recipients:
            Notification.send_in_their_language(recipient, write, self.get_absolute_url())
