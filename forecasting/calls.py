"""Forecast calls: the number a rep (or their manager) puts their name to for a quarter,
and how close each call came to what closed.

A call is cumulative for the quarter, like the result it is compared with: its Commit is
what the caller expects to have closed by the quarter's end (won already plus Commit),
its Best Case the same with the Best Case deals added. Calls are append-only: a new call
never replaces an earlier one, and a manager's adjustment is a row of its own beside the
rep's call, with who and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Team, User, fiscal_quarter, fiscal_quarter_bounds
from forecasting.rollups import Figures, quarter_forecast
from pipeline.models import ChangeForbidden, InvalidChange, Opportunity, within_limit


class CallKind(models.TextChoices):
    REP = "rep", _("Rep's call")
    ADJUSTMENT = "adjustment", _("Manager's adjustment")
    TEAM = "team", _("Team call")


def called_figures(figures: Figures) -> tuple[Decimal, Decimal]:
    """(Commit, Best Case) as a call counts them: closed so far plus what is expected."""
    commit = figures.closed + figures.amounts["commit"]
    return commit, commit + figures.amounts["best_case"]


def quarter_start(year: int, quarter: int) -> datetime:
    first, _after = fiscal_quarter_bounds(year, quarter)
    return datetime.combine(first, time.min, tzinfo=timezone.get_current_timezone())


class ForecastCall(models.Model):
    """One call for one fiscal quarter: a rep's own, a manager's adjustment of a rep's, or
    a manager's call for a team. Never changed after it is made."""

    kind = models.CharField(_("kind"), max_length=20, choices=CallKind.choices)
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("account executive"),
        on_delete=models.PROTECT, null=True, blank=True, related_name="forecast_calls",
        help_text=_("Whose quarter is called; empty for a team call."))
    team = models.ForeignKey(Team, verbose_name=_("team"), on_delete=models.PROTECT,
                             related_name="forecast_calls")
    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"))
    quarter = models.PositiveSmallIntegerField(_("quarter"))
    commit = models.DecimalField(_("commit"), max_digits=14, decimal_places=2)
    best_case = models.DecimalField(_("best case"), max_digits=14, decimal_places=2)
    note = models.TextField(_("note"), max_length=2000, blank=True)
    # What the opportunities said when the call was made, so a call can be read later
    # against the figures its caller saw.
    system_commit = models.DecimalField(_("system commit"), max_digits=14, decimal_places=2)
    system_best_case = models.DecimalField(_("system best case"), max_digits=14,
                                           decimal_places=2)
    made_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("made by"),
                                on_delete=models.PROTECT, related_name="+")
    made_at = models.DateTimeField(_("made"), default=timezone.now)

    class Meta:
        verbose_name = _("forecast call")
        verbose_name_plural = _("forecast calls")
        ordering = ["made_at", "pk"]
        indexes = [models.Index(fields=["fiscal_year", "quarter", "team", "made_at"],
                                name="forecast_call_quarter")]
        constraints = [
            models.CheckConstraint(condition=Q(commit__gte=0), name="forecast_call_commit"),
            models.CheckConstraint(condition=Q(best_case__gte=models.F("commit")),
                                   name="forecast_call_best_case"),
            models.CheckConstraint(condition=Q(kind=CallKind.TEAM, rep__isnull=True)
                                   | (~Q(kind=CallKind.TEAM) & Q(rep__isnull=False)),
                                   name="forecast_call_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} FY{self.fiscal_year} Q{self.quarter}"

    @property
    def subject(self) -> User | Team:
        """Whose quarter the call is about: the rep, or the team for a team call."""
        return self.team if self.kind == CallKind.TEAM else self.rep

    # --- making calls: each checks who may, then appends one row ---

    @classmethod
    def submit(cls, *, by: User, commit: Decimal, best_case: Decimal, note: str = ""
               ) -> ForecastCall:
        """A rep's own call for the current quarter."""
        if not by.is_rep or by.team_id is None:
            raise ChangeForbidden(gettext("Only an account executive of a team makes "
                                          "their own call."))
        figures = cls.system_figures(Opportunity.objects.filter(owner=by))
        return cls._append(CallKind.REP, by=by, rep=by, team=by.team, commit=commit,
                           best_case=best_case, note=note, figures=figures)

    @classmethod
    def adjust(cls, *, by: User, rep: User, commit: Decimal, best_case: Decimal,
               note: str = "") -> ForecastCall:
        """A manager's own number for one of their reps; the rep's call stays as it was."""
        if not cls.may_call_for(by, rep.team) or not rep.is_rep:
            raise ChangeForbidden(gettext("Only the manager of %s's team adjusts their "
                                          "call.") % rep)
        figures = cls.system_figures(Opportunity.objects.filter(owner=rep))
        return cls._append(CallKind.ADJUSTMENT, by=by, rep=rep, team=rep.team,
                           commit=commit, best_case=best_case, note=note, figures=figures)

    @classmethod
    def call_for_team(cls, *, by: User, team: Team, commit: Decimal, best_case: Decimal,
                      note: str = "") -> ForecastCall:
        """A manager's call for a whole team of theirs."""
        if not cls.may_call_for(by, team):
            raise ChangeForbidden(gettext("Only the team's manager calls its quarter."))
        figures = cls.system_figures(Opportunity.objects.filter(owner__team=team))
        return cls._append(CallKind.TEAM, by=by, rep=None, team=team, commit=commit,
                           best_case=best_case, note=note, figures=figures)

    @staticmethod
    def may_call_for(user: User, team: Team | None) -> bool:
        return team is not None and user.is_manager and team.pk in user.team_ids

    @staticmethod
    def system_figures(opportunities) -> tuple[Decimal, Decimal]:
        """What the opportunities say for the current quarter, as a call counts it: the
        prefill of the call form."""
        total, _per_owner = quarter_forecast(opportunities,
                                             *fiscal_quarter(timezone.localdate()))
        return called_figures(total)

    @classmethod
    def _append(cls, kind, *, by, rep, team, commit, best_case, note, figures
                ) -> ForecastCall:
        """Calls are made for the quarter under way only: a call for a quarter already
        over would be a result, not a forecast."""
        if commit < 0 or best_case < commit:
            raise InvalidChange(gettext("The Best Case cannot be below the Commit, and "
                                        "neither below zero."))
        year, quarter = fiscal_quarter(timezone.localdate())
        return cls.objects.create(
            kind=kind, rep=rep, team=team, fiscal_year=year, quarter=quarter,
            commit=commit, best_case=best_case, note=within_limit(note.strip(),
                                                                  gettext("The note")),
            system_commit=figures[0], system_best_case=figures[1], made_by=by,
            made_at=timezone.now(),
        )


# --- accuracy ---


@dataclass
class Accuracy:
    """One caller's calls of one quarter for one subject, against what closed."""

    kind: str
    caller: User
    subject: User | Team
    closed: Decimal
    first: ForecastCall | None
    middle: ForecastCall | None
    last: ForecastCall | None

    @property
    def moments(self) -> list[tuple[str, ForecastCall | None, int | None]]:
        """(label, call, what closed as a percentage of its Commit) for the first, the
        mid-quarter and the last call."""
        return [(label, call, self.percent(call)) for label, call in (
            (gettext("First call"), self.first), (gettext("Mid-quarter call"), self.middle),
            (gettext("Last call"), self.last))]

    def percent(self, call: ForecastCall | None) -> int | None:
        """What closed as a percentage of the call's Commit: 100 means the Commit came
        in exactly, under 100 that it was called too high, over 100 too low."""
        if call is None or not call.commit:
            return None
        return int((self.closed * 100 / call.commit).quantize(Decimal(1)))


def quarter_accuracy(calls, year: int, quarter: int, closed_by_owner: dict[int, Decimal],
                     members: dict[int, list[int]]) -> list[Accuracy]:
    """Accuracy of every caller for a quarter. The mid-quarter call is the one in force
    at the quarter's midpoint (the last made before it); a caller who first called after
    the midpoint has none. `closed_by_owner` is what each rep closed in the quarter,
    `members` the reps of each team."""
    first_day, after = fiscal_quarter_bounds(year, quarter)
    middle = datetime.combine(first_day + (after - first_day) / 2, time.min,
                              tzinfo=timezone.get_current_timezone())
    groups: dict[tuple, list[ForecastCall]] = {}
    for call in calls.filter(fiscal_year=year, quarter=quarter).select_related(
            "rep", "team", "made_by").order_by("made_at", "pk"):
        groups.setdefault((call.kind, call.rep_id, call.team_id, call.made_by_id),
                          []).append(call)
    found = []
    for (kind, rep_id, team_id, _by), made in groups.items():
        if kind == CallKind.TEAM:
            closed = sum((closed_by_owner.get(pk, Decimal(0)) for pk in members.get(team_id, ())),
                         Decimal("0.00"))
        else:
            closed = closed_by_owner.get(rep_id, Decimal("0.00"))
        before_middle = [call for call in made if call.made_at < middle]
        found.append(Accuracy(kind=kind, caller=made[0].made_by, subject=made[0].subject,
                              closed=closed, first=made[0],
                              middle=before_middle[-1] if before_middle else None,
                              last=made[-1]))
    order = list(CallKind.values)
    return sorted(found, key=lambda row: (order.index(row.kind), str(row.subject),
                                          str(row.caller)))
