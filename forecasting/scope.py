"""Whose forecast a user sees (issue 12): a rep their own figures, a manager their teams',
a superuser the company's; nobody else sees any."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext

from crm.models import Role, Team, User
from forecasting.models import Quota, QuotaQuerySet
from pipeline.models import Opportunity, OpportunityQuerySet


def may_see_forecast(user: User) -> bool:
    return user.is_active and (sees_company(user) or user.is_manager or user.is_rep)


def sees_company(user: User) -> bool:
    """Sales ops read every team's forecast, as they see every deal; they set no quotas."""
    return user.is_superuser or user.is_sales_ops


def sees_teams(user: User) -> bool:
    """Managers, sales ops and superusers see teams; a rep sees only themselves."""
    return sees_company(user) or user.is_manager


def forecast_teams(user: User) -> QuerySet[Team]:
    if sees_company(user):
        return Team.objects.order_by("name")
    if user.is_manager:
        return Team.objects.filter(pk__in=user.team_ids).order_by("name")
    return Team.objects.none()


def forecast_owners(user: User) -> QuerySet[User]:
    """The people whose figures the user may see one by one, by name: a deal's owner may
    have left, or be a manager or a BDR, and still stand behind a figure."""
    if sees_company(user):
        owners = User.objects.all()
    elif user.is_manager:
        owners = User.objects.filter(team_id__in=user.team_ids)
    else:
        owners = User.objects.filter(pk=user.pk)
    return owners.order_by("first_name", "last_name", "username")


def quota_reps(user: User) -> QuerySet[User]:
    """The active reps whose quotas the user sets: every team's, or their teams'."""
    reps = User.objects.filter(groups__name=Role.REP, is_active=True, team__isnull=False)
    if not user.is_superuser:
        reps = reps.filter(team_id__in=user.team_ids) if user.is_manager else reps.none()
    return reps.distinct().order_by("team__name", "first_name", "last_name", "username")


@dataclass(frozen=True)
class Scope:
    """The opportunities and quotas behind one view of the forecast; for a scope asked
    for by a page, also the teams and people the user may choose from, and the chosen."""

    opportunities: OpportunityQuerySet
    quotas: QuotaQuerySet
    teams: QuerySet[Team] | None = None
    reps: QuerySet[User] | None = None
    team: Team | None = None
    rep: User | None = None


def forecast_scope(user: User, *, team: Team | None = None, rep: User | None = None
                   ) -> Scope:
    """What the user may see, narrowed to a team or a rep of theirs."""
    opportunities = Opportunity.objects.visible_to(user)
    quotas = Quota.objects.all()
    if not sees_teams(user):
        opportunities, quotas = opportunities.filter(owner=user), quotas.filter(rep=user)
    elif not sees_company(user):
        quotas = quotas.filter(team_id__in=user.team_ids)
    if team is not None:
        opportunities, quotas = opportunities.filter(owner__team=team), quotas.filter(team=team)
    if rep is not None:
        opportunities, quotas = opportunities.filter(owner=rep), quotas.filter(rep=rep)
    return Scope(opportunities, quotas)


def requested_scope(user: User, *, team: str = "", rep: str = "") -> Scope:
    """The scope a page's `team` and `rep` parameters name (ids as text): 403 for a role
    without a forecast, 404 for a team or person the user may not see."""
    if not may_see_forecast(user):
        raise PermissionDenied(gettext("Your role has no forecast."))
    teams, reps = forecast_teams(user), forecast_owners(user)
    chosen_team = chosen(teams, team) if team else None
    chosen_rep = chosen(reps, rep) if rep else None
    return replace(forecast_scope(user, team=chosen_team, rep=chosen_rep),
                   teams=teams, reps=reps, team=chosen_team, rep=chosen_rep)


def chosen(choices: QuerySet, pk: str):
    """The chosen one of `choices` by its id as text; 404 if it is none of them."""
    found = choices.filter(pk=int(pk)).first() if pk.isdigit() and len(pk) <= 12 else None
    if found is None:
        raise Http404(gettext("There is no such team or person among those you may see."))
    return found
