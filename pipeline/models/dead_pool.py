"""The dead pool (process.md, "Timeouts and the dead pool"): BDRs claim dead opportunities
to nurture them and reopen them with a reason. Where a reopened one returns depends on how
long it has been dead (`PROGRESSION_REOPEN_WINDOW_DAYS`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat, NullIf, Trim
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import User
from pipeline.models.choices import Via
from pipeline.models.history import StageChange
from pipeline.models.refusals import ChangeForbidden, Conflict, InvalidChange
from pipeline.process import Stage


def reopen_window() -> timedelta:
    """Dead for less than this, an opportunity reopens in the stage it died in."""
    return timedelta(days=settings.PROGRESSION_REOPEN_WINDOW_DAYS)


class DeadPoolClaim(models.Model):
    """A BDR nurturing a dead opportunity. One open claim per opportunity at a time;
    never deleted: releasing it (or reopening the opportunity) marks it released."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="claims",
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("claimed by"), on_delete=models.PROTECT,
        related_name="+",
    )
    claimed_at = models.DateTimeField(_("claimed"), default=timezone.now)
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("released by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("dead pool claim")
        verbose_name_plural = _("dead pool claims")
        ordering = ["claimed_at", "pk"]
        constraints = [
            # Two BDRs claiming at once: the database lets one of them hold it.
            models.UniqueConstraint(
                fields=["opportunity"], condition=Q(released_at__isnull=True),
                name="dead_pool_claimed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id}: {self.claimed_by}"


def died_in_stage() -> Coalesce:
    """SQL for the stage an opportunity last died in, read from its history. A dead row
    without a recorded death (only seed or test code writes one) counts as dying in
    Identifying."""
    deaths = StageChange.objects.filter(
        opportunity=OuterRef("pk"), to_stage=Stage.DEAD).order_by("-changed_at", "-pk")
    return Coalesce(Subquery(deaths.values("from_stage")[:1]), Value(Stage.IDENTIFYING.value),
                    output_field=models.CharField())


def open_claims() -> models.QuerySet:
    return DeadPoolClaim.objects.filter(opportunity=OuterRef("pk"),
                                        released_at__isnull=True).order_by()


def claimer_annotations() -> dict:
    """The open claim's BDR, as an id and as a name (`User.__str__` in SQL), so a page of
    the pool needs no query per row."""
    full_name = Trim(Concat("claimed_by__first_name", Value(" "), "claimed_by__last_name",
                            output_field=models.CharField()))
    named = open_claims().annotate(
        shown=Coalesce(NullIf(full_name, Value("")), "claimed_by__username",
                       output_field=models.CharField()))
    return {
        "claimer_id": Subquery(open_claims().values("claimed_by")[:1]),
        "claimer_team_id": Subquery(open_claims().values("claimed_by__team")[:1]),
        "claimer_name": Subquery(named.values("shown")[:1]),
    }


# The pool's age filter: where a reopening would go, and the long dead.
AGE_RECENT, AGE_OLDER, AGE_OVER_A_YEAR = "recent", "older", "over_a_year"
A_YEAR = timedelta(days=365)


def dead_since_bounds(age: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(died after, died at or before) for an age band; None where open."""
    if age == AGE_RECENT:
        return now - reopen_window(), None
    if age == AGE_OLDER:
        return now - A_YEAR, now - reopen_window()
    if age == AGE_OVER_A_YEAR:
        return None, now - A_YEAR
    return None, None


class DeadPool:
    """The dead-pool side of an opportunity: how long it has been dead, where it would
    reopen, and the BDR's claim on it."""

    # What the methods below remember on an instance; reload() forgets them.
    POOL_CACHES = ("died_in", "_active_claim", "claimer_id", "claimer_name", "claimer_team_id")

    def stage_of_death(self) -> Stage:
        """The stage it last died in (the pool's listing brings it annotated)."""
        if "died_in" not in self.__dict__:
            self.died_in = (
                self.stage_changes.filter(to_stage=Stage.DEAD).order_by("-changed_at", "-pk")
                .values_list("from_stage", flat=True).first() or Stage.IDENTIFYING
            )
        return Stage(self.died_in)

    def days_dead(self, now: datetime | None = None) -> int:
        return ((now or timezone.now()) - self.stage_entered_at).days

    def is_recently_dead(self, now: datetime | None = None) -> bool:
        """Dead for less than the reopen window."""
        return (self.stage == Stage.DEAD
                and (now or timezone.now()) - self.stage_entered_at < reopen_window())

    def reopen_stage(self, now: datetime | None = None) -> Stage:
        """Where reopening takes it: recently dead, back to the stage it died in (one that
        died waiting for sales ops' review returns to Finalizing, where the order is
        recorded again); otherwise Identifying, to be qualified afresh."""
        if not self.is_recently_dead(now):
            return Stage.IDENTIFYING
        died_in = self.stage_of_death()
        return Stage.FINALIZING if died_in == Stage.PENDING else died_in

    def active_claim(self) -> DeadPoolClaim | None:
        """The open claim, read once per instance (reload() forgets it)."""
        if "_active_claim" not in self.__dict__:
            self._active_claim = self.claims.filter(
                released_at__isnull=True).select_related("claimed_by").first()
        return self._active_claim

    def is_claimed_by(self, user: User | None) -> bool:
        """Whether `user` holds the open claim: a claiming BDR nurtures the deal (logs its
        activities) while it is dead."""
        if user is None or not user.is_authenticated:
            return False
        if "claimer_id" in self.__dict__:
            return self.claimer_id == user.pk
        claim = self.active_claim()
        return claim is not None and claim.claimed_by_id == user.pk

    def may_release_claim(self, user: User, claimer: User) -> bool:
        """The claiming BDR lets go, or a manager of their team frees the deal."""
        return (user.is_superuser or user.pk == claimer.pk
                or (user.is_manager and claimer.team_id in user.team_ids))

    def _claimed_elsewhere(self, claim: DeadPoolClaim) -> Conflict:
        return Conflict(
            gettext("“%(name)s” is already claimed by %(who)s since %(when)s. Nothing was "
                    "changed.")
            % {"name": self.name, "who": claim.claimed_by,
               "when": timezone.localtime(claim.claimed_at).strftime("%Y-%m-%d %H:%M")},
            opportunity=self,
        )

    def claim(self, *, by: User, now: datetime | None = None) -> DeadPoolClaim:
        """A BDR takes a dead opportunity to nurture it; one claimer at a time."""
        if not (by.is_bdr and by.is_active):
            raise ChangeForbidden(gettext("Only BDRs claim dead opportunities to nurture "
                                          "them."))
        now = now or timezone.now()
        with transaction.atomic():
            # The row lock makes two claims run one after the other: the second sees the
            # first's claim.
            locked = self._lock(None, by)
            if locked.stage != Stage.DEAD:
                raise InvalidChange(gettext("Only a dead opportunity can be claimed; “%(name)s”"
                                            " is in %(stage)s.")
                                    % {"name": locked.name, "stage": Stage(locked.stage).label})
            current = locked.active_claim()
            if current is not None:
                if current.claimed_by_id == by.pk:
                    raise InvalidChange(gettext("You already claimed “%s”.") % locked.name)
                raise locked._claimed_elsewhere(current)
            try:
                with transaction.atomic():
                    claim = DeadPoolClaim.objects.create(opportunity=locked, claimed_by=by,
                                                         claimed_at=now)
            except IntegrityError:  # without row locks (SQLite), the constraint decides
                raise locked._claimed_elsewhere(
                    locked.claims.select_related("claimed_by").get(released_at__isnull=True)
                ) from None
        self.__dict__.pop("claimer_id", None)
        self._active_claim = claim
        return claim

    def release_claim(self, *, by: User, now: datetime | None = None) -> None:
        """End the open claim; the row stays, marked released."""
        now = now or timezone.now()
        with transaction.atomic():
            locked = self._lock(None, by)
            claim = locked.active_claim()
            if claim is None:
                raise InvalidChange(gettext("“%s” is not claimed.") % locked.name)
            if not self.may_release_claim(by, claim.claimed_by):
                raise ChangeForbidden(gettext("%(who)s claimed “%(name)s”; only they or their "
                                              "manager release it.")
                                      % {"who": claim.claimed_by, "name": locked.name})
            locked._end_claim(by, now)
        self.__dict__.pop("claimer_id", None)
        self._active_claim = None

    def _end_claim(self, by: User | None, now: datetime) -> None:
        self.claims.filter(released_at__isnull=True).update(released_at=now, released_by=by)
        self.__dict__.pop("_active_claim", None)

    def reopen(self, *, by: User, reason: str, via: Via = Via.PAGE,
               expected_version: int | None = None, now: datetime | None = None):
        """Reopen from the pool through `move_to`, to wherever `reopen_stage` says."""
        now = now or timezone.now()
        if self.stage != Stage.DEAD:
            raise InvalidChange(gettext("“%s” is not dead.") % self.name)
        # The target is read from this instance: if the row changed since it was read (say,
        # another BDR reopened it), the move must be refused, not made from the new stage.
        return self.move_to(self.reopen_stage(now), by=by, via=via, reason=reason,
                            expected_version=self.version if expected_version is None
                            else expected_version, now=now)

    def _check_reopening(self, target: Stage, by: User | None, now: datetime) -> None:
        """Under the lock, before anything is written: the right stage, and no other BDR's
        claim in the way."""
        returns_to = self.reopen_stage(now)
        if target != returns_to:
            if returns_to == Stage.IDENTIFYING:
                message = gettext("“%(name)s” has been dead for %(days)d days: it reopens in "
                                  "%(stage)s.")
            else:
                message = gettext("“%(name)s” died %(days)d days ago: it reopens in "
                                  "%(stage)s, where it died.")
            raise InvalidChange(message % {"name": self.name, "days": self.days_dead(now),
                                           "stage": returns_to.label})
        claim = self.active_claim()
        if (claim is not None and by is not None and by.is_bdr and not by.is_superuser
                and claim.claimed_by_id != by.pk):
            raise ChangeForbidden(
                gettext("%(who)s claimed “%(name)s”; they reopen it, or release it first.")
                % {"who": claim.claimed_by, "name": self.name})
