"""The forecast's analysis pages: the funnel and the calibration, each a chart with the
same figures as a table, and every table as CSV. A rep sees their own opportunities, a
manager their teams' (or one team, or one rep of them), sales ops the company's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import (
    fiscal_quarter,
    fiscal_quarter_bounds,
    fiscal_quarters_around,
    quarter_from_text,
)
from forecasting import calibration as calibration_rules
from forecasting.csv_export import csv_response
from forecasting.forms import AnalysisForm
from forecasting.funnel import funnel
from forecasting.scope import forecast_owners, forecast_scope, forecast_teams, may_see_forecast
from pipeline.models import OpportunityQuerySet

BUCKETS = calibration_rules.DAY_BUCKETS


@dataclass
class Analysis:
    """What the request asks for: the form, the quarter and the opportunities in scope."""

    form: AnalysisForm
    quarter: tuple[int, int]
    opportunities: OpportunityQuerySet

    @property
    def quarter_text(self) -> str:
        return quarter_text(self.quarter)


def quarter_text(quarter: tuple[int, int]) -> str:
    """As the board's and forecast's filters write a quarter: "2026-Q2"."""
    return f"{quarter[0]}-Q{quarter[1]}"


def read_analysis(request, *, default_quarter: tuple[int, int]) -> Analysis:
    """The scope asked for, or 403 (no right to the analysis) or 404 (a team or rep out of
    reach); a bad quarter leaves the form with its errors, for a 400."""
    user = request.user
    if not may_see_forecast(user):
        raise PermissionDenied(_("Your role has no forecast."))
    form = AnalysisForm(request.GET, teams=forecast_teams(user), reps=forecast_owners(user))
    form.is_valid()
    if form.out_of_reach():
        raise Http404(_("There is no such team or person among those you may see."))
    data = form.cleaned_data
    quarter = quarter_from_text(data["quarter"]) if data.get("quarter") else default_quarter
    opportunities = forecast_scope(user, team=data.get("team"), rep=data.get("rep")
                                   ).opportunities
    return Analysis(form, quarter, opportunities)


def quarter_shifted(quarter: tuple[int, int], by: int) -> tuple[int, int]:
    index = quarter[0] * 4 + quarter[1] - 1 + by
    return index // 4, index % 4 + 1


def page(request, analysis: Analysis, template: str, tables: dict[str, Callable], context
         ) -> HttpResponse:
    """The page, or the table asked for as CSV; 400 with the reason for bad input."""
    form = analysis.form
    wanted = form.cleaned_data.get("table") or next(iter(tables))
    if form.cleaned_data.get("format") == "csv" and wanted not in tables:
        form.add_error("table", _("This page has no table “%s”.") % wanted)
    if form.cleaned_data.get("format") == "csv" and not form.errors:
        return tables[wanted]()
    return TemplateResponse(request, template, {
        "form": form,
        "tab": template.rsplit("/", 1)[1].removesuffix(".html"),
        "quarter": analysis.quarter_text,
        "quarters": fiscal_quarters_around(timezone.localdate(), before=8, after=2),
        **(context() if not form.errors else {}),
    }, status=400 if form.errors else 200)


@login_required
def funnel_page(request) -> HttpResponse:
    """Of the opportunities that entered each stage in the quarter, the share that reached
    the next one and the median days they spent in it."""
    analysis = read_analysis(request, default_quarter=fiscal_quarter(timezone.localdate()))
    rows = []
    if not analysis.form.errors:
        rows = funnel(analysis.opportunities, *fiscal_quarter_bounds(*analysis.quarter))

    def as_csv() -> HttpResponse:
        return csv_response(
            f"funnel-{analysis.quarter_text}",
            [_("Stage"), _("Entered"), _("Reached the next stage"), _("Share (%)"),
             _("Still in the stage"), _("Median days in the stage")],
            ([row.stage.label, row.entered, row.reached_next, row.share, row.still_in,
              row.median_days] for row in rows))

    def context() -> dict:
        return {"rows": rows, "chart": {
            "type": "bar",
            "labels": [str(row.stage.label) for row in rows],
            "datasets": [{"label": _("Reached the next stage (%)"),
                          "data": [row.share for row in rows]}],
        }}

    return page(request, analysis, "forecasting/funnel.html", {"funnel": as_csv}, context)


@login_required
def calibration_page(request) -> HttpResponse:
    """For each stage, the share of the decided opportunities that stood in it during the
    four quarters ending with the chosen one and were won, beside the process's
    probability, and the same by days spent in the stage."""
    last_complete = quarter_shifted(fiscal_quarter(timezone.localdate()), -1)
    analysis = read_analysis(request, default_quarter=last_complete)
    first_quarter = quarter_shifted(analysis.quarter, -3)
    rows = []
    if not analysis.form.errors:
        rows = calibration_rules.calibration(
            analysis.opportunities, fiscal_quarter_bounds(*first_quarter)[0],
            fiscal_quarter_bounds(*analysis.quarter)[1])
    too_little = _("too little history")

    def by_stage() -> HttpResponse:
        return csv_response(
            f"calibration-{analysis.quarter_text}",
            [_("Stage"), _("Probability (%)"), _("Won"), _("Decided"), _("Still open"),
             _("Won share (%)"), _("Note")],
            ([row.stage.label, row.probability, row.total.won, row.total.decided,
              row.total.still_open, row.total.share,
              "" if row.total.enough else too_little] for row in rows))

    def by_days() -> HttpResponse:
        return csv_response(
            f"calibration-days-{analysis.quarter_text}",
            [_("Stage"), _("Days in the stage"), _("Probability (%)"), _("Won"),
             _("Decided"), _("Won share (%)"), _("Note")],
            ([row.stage.label, label, row.probability, tally.won, tally.decided,
              tally.share, "" if tally.enough else too_little]
             for row in rows
             for (label, _last), tally in zip(BUCKETS, row.buckets, strict=True)))

    def context() -> dict:
        return {
            "rows": rows, "buckets": [label for label, _last in BUCKETS],
            "first_quarter": quarter_text(first_quarter),
            "minimum": calibration_rules.MINIMUM_SAMPLE,
            "chart": {
                "type": "bar",
                "labels": [str(row.stage.label) for row in rows],
                "datasets": [
                    {"label": _("Won (%)"), "data": [row.total.share for row in rows]},
                    {"label": _("Probability in the process (%)"),
                     "data": [row.probability for row in rows]},
                ],
            },
        }

    return page(request, analysis, "forecasting/calibration.html",
                {"calibration": by_stage, "calibration_days": by_days}, context)
