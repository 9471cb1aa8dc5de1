"""Who may do what with an opportunity: the one place every view and the admin ask."""

from __future__ import annotations

from crm.models import User
from pipeline.process import ORDERED_STAGES, Stage


class Permissions:
    """The permission side of an opportunity (process.md, Roles): seeing, editing,
    moving, reassigning and opening."""

    def is_visible_to(self, user: User) -> bool:
        return type(self).objects.visible_to(user).filter(pk=self.pk).exists()

    def is_managed_by(self, user: User) -> bool:
        return user.is_manager and self.owner.team_id in user.team_ids

    def can_edit(self, user: User | None) -> bool:
        """May change fields, ticks, champion and committee (not the stage per se)."""
        if user is None or user.is_superuser:
            return True
        if not self.is_open:
            return False
        if self.is_managed_by(user):
            return True
        if self.owner_id != user.pk:
            return False
        if user.is_rep:
            return True
        return user.is_bdr and self.stage == Stage.IDENTIFYING

    def can_move(self, user: User | None, target: Stage) -> bool:
        """May this user ask for this move? Gates are checked separately."""
        if user is None or user.is_superuser:
            return True
        if self.stage == Stage.PENDING:
            if target in (Stage.CLOSED, Stage.FINALIZING):
                return user.is_sales_ops
            return target == Stage.DEAD and self.is_managed_by(user)
        if self.stage == Stage.DEAD:  # a rep reopens only their own recent loss
            return user.is_bdr or self.is_managed_by(user) or (
                self.owner_id == user.pk and user.is_rep and self.is_recently_dead()
            )
        return self.can_edit(user)

    def reachable_stages(self) -> list[Stage]:
        """Where the process lets this opportunity go from here, ignoring gates and roles."""
        stage = Stage(self.stage)
        if stage == Stage.CLOSED:
            return []
        if stage == Stage.DEAD:
            return [self.reopen_stage()]
        if stage == Stage.PENDING:  # approved or rejected on the review page, not moved
            return [Stage.DEAD]
        up_to_pending = ORDERED_STAGES[: ORDERED_STAGES.index(Stage.PENDING) + 1]
        return [*(s for s in up_to_pending if s != stage), Stage.DEAD]

    def needs_reason_for(self, target: Stage) -> bool:
        """Moves back, to Dead, out of Dead and rejections ask for a reason first."""
        source = Stage(self.stage)
        if target == Stage.DEAD or source == Stage.DEAD:
            return True
        if source == Stage.PENDING:
            return target == Stage.FINALIZING
        return (target.order or 0) < (source.order or 0)

    def move_targets_for(self, user: User | None) -> list[Stage]:
        """The stages this user may ask to move to (a gate may still refuse forward moves)."""
        return [stage for stage in self.reachable_stages() if self.can_move(user, stage)]

    def can_change_owner(self, user: User | None) -> bool:
        return user is None or user.is_superuser or self.is_managed_by(user)

    def may_be_handed_to(self, new_owner: User, *, by: User | None) -> bool:
        """May `by` make `new_owner` the owner? The app, the admin's form and its bulk
        reassignment all ask this: a team's manager (or a superuser) hands it to an active
        account executive, or while in stage 1 or dead to a BDR, of a team they lead."""
        if not self.can_change_owner(by) or not new_owner.is_active:
            return False
        may_own = new_owner.is_rep or (
            new_owner.is_bdr and self.stage in (Stage.IDENTIFYING, Stage.DEAD))
        if by is None or by.is_superuser:
            return may_own
        return may_own and new_owner.team_id in by.team_ids

    @staticmethod
    def may_be_opened(*, by: User | None, owner: User) -> bool:
        """May `by` open an opportunity owned by `owner`? Reps and BDRs open their own; a
        manager opens them for the reps and BDRs of a team they lead; sales ops and people
        without a role open none (process.md, Roles)."""
        if not owner.is_active or not (owner.is_rep or owner.is_bdr):
            return False
        if by is not None and not by.may_open_opportunities:
            return False
        if by is None or by.is_superuser or by.pk == owner.pk:
            return True
        return by.is_manager and owner.team_id in by.team_ids
