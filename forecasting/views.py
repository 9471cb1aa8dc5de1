from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Sum
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User, company_currency, fiscal_quarter, fiscal_quarters_around
from crm.models import quarter_from_text as parsed_quarter
from forecasting.coverage import historical_coverage
from forecasting.csv_export import csv_response
from forecasting.forms import FigureForm, ForecastForm, QuotaForm
from forecasting.models import Quota
from forecasting.rollups import Figures, quarter_forecast
from forecasting.scope import (
    Scope,
    forecast_owners,
    forecast_scope,
    forecast_teams,
    may_see_forecast,
    quota_reps,
    sees_teams,
)
from pipeline.models import ChangeForbidden, ChangeRefused
from pipeline.process import ForecastCategory

# The dashboard lists this many flagged opportunities, and says how many there are.
FLAGGED_SHOWN = 50
LISTED_PER_PAGE = 100
FIGURES = ("closed", "commit", "best_case", "pipeline", "open")


def not_for_this_role(request, message: str) -> TemplateResponse:
    return TemplateResponse(request, "forbidden.html",
                            {"refusal": ChangeForbidden(message)}, status=403)


def chosen_quarter(form) -> tuple[int, int]:
    """The form's quarter, valid even where another field is not; else today's."""
    form.is_valid()
    value = form.cleaned_data.get("quarter", "")
    return parsed_quarter(value) if value else fiscal_quarter(timezone.localdate())


def dashboard_query(request, form_class) -> tuple:
    """The form of the dashboard's URL (quarter, team, rep), the quarter it names, and
    the scope it narrows the user's view to."""
    user = request.user
    query = request.GET.copy()
    if not query.get("quarter"):  # shown filled in: the reader sees which quarter it is
        year, quarter = fiscal_quarter(timezone.localdate())
        query["quarter"] = f"{year}-Q{quarter}"
    form = form_class(query, teams=forecast_teams(user), reps=forecast_owners(user))
    form.is_valid()
    data = form.cleaned_data
    scope = forecast_scope(user, team=data.get("team"), rep=data.get("rep"))
    return form, chosen_quarter(form), scope


@dataclass
class RepRow:
    """One rep's line of the table: their quota, figures, and where each figure leads."""

    owner: User
    figures: Figures
    quota: Decimal | None
    links: dict[str, str]

    @property
    def coverage(self) -> Decimal | None:
        return self.figures.coverage(self.quota)


def figure_links(quarter: str, **scope) -> dict[str, str]:
    """The list of exactly the opportunities behind each figure, in this scope."""
    base = reverse("forecasting:opportunity_list")
    scope = {name: value for name, value in scope.items() if value}
    return {figure: f"{base}?{urlencode({'quarter': quarter, **scope, 'figure': figure})}"
            for figure in FIGURES}


@login_required
def forecast(request) -> TemplateResponse:
    """The quarter's forecast for what the user may see (a rep their own, a manager their
    teams', narrowed to a team or a rep): Closed, Commit, Best Case, Pipeline, the weighted
    pipeline, the target summed from quotas and the gap to it, the coverage beside the
    coverage history says is needed, a row per rep, and the opportunities to question."""
    user = request.user
    if not may_see_forecast(user):
        return not_for_this_role(request, _("The forecast is for reps and their managers."))
    form, (year, quarter), scope = dashboard_query(request, ForecastForm)
    quarter_text = f"{year}-Q{quarter}"
    total, per_owner = quarter_forecast(scope.opportunities, year, quarter)
    quotas = scope.quotas.of_quarter(year, quarter)
    quota_of = quotas.per_rep()
    owners = User.objects.filter(pk__in={*per_owner, *quota_of}).order_by(
        "first_name", "last_name", "username")
    rows = [RepRow(owner, per_owner.get(owner.pk, Figures()), quota_of.get(owner.pk),
                   figure_links(quarter_text, rep=owner.pk)) for owner in owners]
    if request.GET.get("format") == "csv" and not form.errors:
        return forecast_csv(quarter_text, rows)
    target = quotas.target()
    data = form.cleaned_data
    return TemplateResponse(request, "forecasting/forecast.html", {
        "form": form,
        "quarter": quarter_text,
        "quarters": fiscal_quarters_around(timezone.localdate(), before=4, after=2),
        "total": total,
        "target": target,
        "gap": total.gap(target),
        "coverage": total.coverage(target),
        "history": historical_coverage(scope.opportunities, year, quarter),
        "links": figure_links(quarter_text, team=getattr(data.get("team"), "pk", None),
                              rep=getattr(data.get("rep"), "pk", None)),
        "rows": rows,
        **flagged(scope),
        "may_set_quotas": sees_teams(user),
    }, status=400 if form.errors else 200)


def flagged(scope: Scope) -> dict:
    """The open opportunities carrying a hygiene flag, soonest close first."""
    today = timezone.localdate()
    found = scope.opportunities.needing_attention(today)
    shown = list(found.select_related("account", "owner")
                 .order_by("expected_close_date", "pk")[:FLAGGED_SHOWN])
    return {"flagged": [(opportunity, opportunity.hygiene_flags(today)) for opportunity in shown],
            "flagged_count": found.count() if len(shown) == FLAGGED_SHOWN else len(shown)}


def forecast_csv(quarter: str, rows: list[RepRow]) -> HttpResponse:
    """The per-rep table as a spreadsheet reads it: amounts as plain decimals."""
    return csv_response(
        f"forecast-{quarter}",
        [_("Rep"), _("Quota"), _("Closed"), _("Commit"), _("Best Case"), _("Pipeline"),
         _("Weighted pipeline"), _("Coverage"), _("Currency")],
        ([str(row.owner), row.quota, row.figures.closed, row.figures.amounts["commit"],
          row.figures.amounts["best_case"], row.figures.amounts["pipeline"],
          row.figures.weighted, row.coverage, company_currency()] for row in rows))


@login_required
def opportunity_list(request) -> TemplateResponse:
    """Exactly the opportunities behind one figure of the dashboard, in its scope: the
    same query the figure is summed from."""
    if not may_see_forecast(request.user):
        return not_for_this_role(request, _("The forecast is for reps and their managers."))
    form, (year, quarter), scope = dashboard_query(request, FigureForm)
    figure = form.cleaned_data.get("figure", "")
    if figure == "open":
        found = scope.opportunities.expected_in_quarter(year, quarter)
    else:
        found = scope.opportunities.behind_forecast(
            year, quarter, ForecastCategory(figure) if figure else None)
    found = found.select_related("account", "owner").order_by("expected_close_date", "pk")
    page = Paginator(found, LISTED_PER_PAGE).get_page(request.GET.get("page"))
    return TemplateResponse(request, "forecasting/opportunity_list.html", {
        "form": form,
        "quarter": f"{year}-Q{quarter}",
        "quarters": fiscal_quarters_around(timezone.localdate(), before=4, after=2),
        "page": page,
        "totals": found.company_totals(),
        "query": request.GET.copy(),
    }, status=400 if form.errors else 200)


@login_required
def quota_list(request) -> TemplateResponse:
    """The quotas of a quarter for the reps of the manager's teams; the manager sets them
    here, all at once, and a refused one changes none."""
    user = request.user
    if not (user.is_superuser or user.is_manager):
        return not_for_this_role(request, _("Managers set their reps' quotas."))
    reps = quota_reps(user).select_related("team")
    form = QuotaForm(request.POST if request.method == "POST" else request.GET, reps=reps)
    year, quarter = chosen_quarter(form)
    quarter_text = f"{year}-Q{quarter}"
    status = 400 if form.errors else 200
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                for rep, amount in form.quotas():
                    Quota.set(rep=rep, fiscal_year=year, quarter=quarter, amount=amount,
                              by=user)
        except ChangeRefused as refusal:
            messages.error(request, refusal.message)
            status = refusal.status_code
        else:
            messages.success(request, _("Quotas saved."))
            return HttpResponseRedirect(
                f"{reverse('forecasting:quota_list')}?{urlencode({'quarter': quarter_text})}")
    quotas = Quota.objects.of_quarter(year, quarter).filter(rep__in=reps)
    quota_of = quotas.per_rep()
    return TemplateResponse(request, "forecasting/quota_list.html", {
        "form": form,
        "quarter": quarter_text,
        "quarters": fiscal_quarters_around(timezone.localdate(), before=4, after=4),
        "rows": [{"rep": rep, "field": form[QuotaForm.field_name(rep)],
                  "quota": quota_of.get(rep.pk)} for rep in form.reps],
        "targets": quotas.order_by().values("team__name").annotate(total=Sum("amount"))
        .order_by("team__name"),
    }, status=status)


@login_required
def target_list(request) -> HttpResponseRedirect:
    """The former page of team targets: targets are now summed from quotas."""
    return HttpResponseRedirect(reverse("forecasting:quota_list"))


@login_required
def home(request):
    """Sales ops start at their queue, managers at the forecast, everyone else at the
    board."""
    if request.user.is_sales_ops:
        return HttpResponseRedirect(reverse("pipeline:order_queue"))
    if request.user.is_manager:
        return HttpResponseRedirect(reverse("forecasting:forecast"))
    return HttpResponseRedirect(reverse("pipeline:board"))
