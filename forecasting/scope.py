"""Whose forecast a user may look at: the company, one team, or one rep.

A rep sees their own figures only, a manager those of the teams they lead or belong to,
sales ops and superusers everyone's. A team or rep outside that is answered with 404,
as if it did not exist; a role with no forecast at all (BDR, no role) with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext

from crm.models import Team, User
from pipeline.models import Opportunity, OpportunityQuerySet


@dataclass
class Scope:
    opportunities: OpportunityQuerySet
    teams: QuerySet[Team]  # the teams the user may choose from
    reps: QuerySet[User]  # the reps the user may choose from
    team: Team | None = None
    rep: User | None = None


def sees_everyone(user: User) -> bool:
    return user.is_superuser or user.is_sales_ops


def forecast_scope(user: User, *, team: str = "", rep: str = "") -> Scope:
    """The opportunities behind the figures `user` asked for (ids as given in the URL)."""
    if not (sees_everyone(user) or user.is_manager or user.is_rep):
        raise PermissionDenied(gettext("Your role has no forecast."))
    if sees_everyone(user):
        teams = Team.objects.all()
        reps = User.objects.filter(team__isnull=False, is_active=True)
        opportunities = Opportunity.objects.all()
    elif user.is_manager:
        teams = Team.objects.filter(pk__in=user.team_ids)
        reps = User.objects.filter(Q(team_id__in=user.team_ids) | Q(pk=user.pk))
        opportunities = Opportunity.objects.filter(
            Q(owner__team_id__in=user.team_ids) | Q(owner=user))
    else:
        teams = Team.objects.none()
        reps = User.objects.filter(pk=user.pk)
        opportunities = Opportunity.objects.filter(owner=user)
    scope = Scope(opportunities=opportunities, teams=teams,
                  reps=reps.order_by("first_name", "last_name", "username"))
    if team:
        scope.team = chosen(teams, team)
        scope.opportunities = scope.opportunities.filter(owner__team=scope.team)
    if rep:
        scope.rep = chosen(reps, rep)
        scope.opportunities = scope.opportunities.filter(owner=scope.rep)
    return scope


def chosen(choices: QuerySet, pk: str):
    """The chosen team or rep, if the user may choose it; 404 otherwise."""
    if not pk.isdigit() or len(pk) > 12:
        raise Http404(gettext("There is no such team or person among those you may see."))
    found = choices.filter(pk=int(pk)).first()
    if found is None:
        raise Http404(gettext("There is no such team or person among those you may see."))
    return found
