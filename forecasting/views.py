import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import (
    Team,
    User,
    company_currency,
    fiscal_quarter,
    fiscal_quarters_around,
    quarter_from_text,
)
from forecasting.forms import ForecastForm, TargetForm
from forecasting.models import Target
from forecasting.rollups import quarter_forecast
from pipeline.models import ChangeRefused, Opportunity


@login_required
def target_list(request) -> TemplateResponse:
    """Targets of the teams the user belongs to or leads; their manager sets them here."""
    user = request.user
    teams = Team.objects.all() if user.is_superuser or user.is_sales_ops else (
        Team.objects.filter(pk__in=user.team_ids)
    )
    year, quarter = fiscal_quarter(timezone.localdate())
    form = TargetForm(request.POST or None, teams=teams,
                      initial={"fiscal_year": year, "quarter": quarter})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                Target.set(by=user, **form.cleaned_data)
            except ChangeRefused as refusal:
                messages.error(request, refusal.message)
                status = refusal.status_code
            else:
                messages.success(request, _("Target saved."))
                return HttpResponseRedirect(reverse("forecasting:target_list"))
        else:
            status = 400
    targets = Target.objects.filter(team__in=teams).select_related("team", "set_by")
    return TemplateResponse(request, "forecasting/target_list.html", {
        "targets": targets,
        "form": form,
        "may_set": any(Target.may_be_set_by(user, team) for team in teams),
    }, status=status)


@login_required
def forecast(request) -> TemplateResponse:
    """The quarter's forecast for what the user may see (their team, or one team of
    theirs): Closed, Commit, Best Case, Pipeline, the weighted pipeline, the target and
    the gap to it, and a row per owner whose figures link to the deals behind them."""
    user = request.user
    teams = Team.objects.all() if user.is_superuser or user.is_sales_ops else (
        Team.objects.filter(pk__in=user.team_ids))
    form = ForecastForm(request.GET, teams=teams)
    form.is_valid()
    data = form.cleaned_data
    year, quarter = (quarter_from_text(data["quarter"]) if data.get("quarter")
                     else fiscal_quarter(timezone.localdate()))
    opportunities = Opportunity.objects.visible_to(user)
    scope = teams
    if data.get("team"):
        opportunities = opportunities.filter(owner__team=data["team"])
        scope = teams.filter(pk=data["team"].pk)
    total, per_owner = quarter_forecast(opportunities, year, quarter)
    target = (Target.objects.filter(team__in=scope, fiscal_year=year, quarter=quarter)
              .aggregate(total=Sum("amount"))["total"])
    owners = User.objects.filter(pk__in=per_owner).order_by("first_name", "last_name")
    quarter_text = f"{year}-Q{quarter}"
    if request.GET.get("format") == "csv" and not form.errors:
        return forecast_csv(quarter_text, [(owner, per_owner[owner.pk]) for owner in owners])
    return TemplateResponse(request, "forecasting/forecast.html", {
        "form": form,
        "quarter": quarter_text,
        "quarters": fiscal_quarters_around(timezone.localdate(), before=4, after=2),
        "total": total,
        "target": target,
        "gap": total.gap(target),
        "coverage": total.coverage(target),
        "rows": [{"owner": owner, "figures": per_owner[owner.pk],
                  "links": board_links(owner, quarter_text,
                                       current=(year, quarter) == fiscal_quarter(
                                           timezone.localdate()))}
                 for owner in owners],
    }, status=400 if form.errors else 200)


def forecast_csv(quarter: str, rows: list) -> HttpResponse:
    """The per-owner table as a spreadsheet reads it: amounts as plain decimals."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="forecast-{quarter}.csv"'
    writer = csv.writer(response)
    writer.writerow([_("Owner"), _("Closed"), _("Commit"), _("Best Case"), _("Pipeline"),
                     _("Weighted pipeline"), _("Currency")])
    for owner, figures in rows:
        writer.writerow([str(owner), figures.closed, figures.amounts["commit"],
                         figures.amounts["best_case"], figures.amounts["pipeline"],
                         figures.weighted, company_currency()])
    return response


def board_links(owner: User, quarter: str, *, current: bool) -> dict[str, str]:
    """The board filtered to the deals behind each of an owner's figures. The board shows
    the deals closed this quarter, or all of them: for an earlier quarter, the closed
    figure links to all the owner's closed deals."""
    base = f"{reverse('pipeline:board')}?owner={owner.pk}&quarter={quarter}"
    closed = "" if current else "&closed=all"
    return {
        "closed": f"{reverse('pipeline:board')}?owner={owner.pk}&category=closed{closed}",
        **{category: f"{base}&category={category}"
           for category in ("commit", "best_case", "pipeline")},
    }


@login_required
def home(request):
    """Sales ops start at their queue, managers at the forecast, everyone else at the
    board."""
    if request.user.is_sales_ops:
        return HttpResponseRedirect(reverse("pipeline:order_queue"))
    if request.user.is_manager:
        return HttpResponseRedirect(reverse("forecasting:forecast"))
    return HttpResponseRedirect(reverse("pipeline:board"))
