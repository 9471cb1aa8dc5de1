"""Pages of the forecast calls, their accuracy, the snapshots and what changed since one."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import Q
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.models import Role, User, fiscal_quarter, fiscal_quarter_bounds, quarter_from_text
from forecasting.call_forms import CallForm
from forecasting.calls import CallKind, ForecastCall, called_figures, quarter_accuracy
from forecasting.changes import KINDS, changes_since
from forecasting.csv_export import csv_response, wanted_table
from forecasting.rollups import Figures, quarter_forecast
from forecasting.scope import Scope, chosen, requested_scope, sees_company
from forecasting.snapshots import Snapshot
from pipeline.models import ChangeRefused


def chosen_quarter(request, default: tuple[int, int] | None = None) -> tuple[int, int]:
    """The quarter of the URL ("2027-Q1"), or the default (the current one)."""
    text = request.GET.get("quarter", "")
    if not text:
        return default or fiscal_quarter(timezone.localdate())
    try:
        return quarter_from_text(text)
    except ValueError:
        raise BadRequest(_("There is no quarter %s in the calendar.") % text[:20]) from None


def calls_in(scope: Scope, user: User):
    """The calls the user may read: all for who sees the company, a manager their
    teams', a rep their own."""
    calls = ForecastCall.objects.all()
    if not sees_company(user):
        calls = (calls.filter(team_id__in=user.team_ids) if user.is_manager
                 else calls.filter(kind=CallKind.REP, rep=user))
    if scope.team:
        calls = calls.filter(team=scope.team)
    if scope.rep:
        calls = calls.filter(rep=scope.rep)
    return calls


def latest(calls, **matching) -> ForecastCall | None:
    return calls.filter(**matching).order_by("-made_at", "-pk").select_related("made_by").first()


def calls_context(request, scope: Scope, year: int, quarter: int) -> dict:
    """The calls page: per rep and per team, the system's figures beside the latest call
    and the latest adjustment, the forms to call, and every call of the quarter."""
    user = request.user
    current = (year, quarter) == fiscal_quarter(timezone.localdate())
    total, per_owner = quarter_forecast(scope.opportunities, year, quarter)
    calls = calls_in(scope, user).filter(fiscal_year=year, quarter=quarter)
    reps = scope.reps.filter(groups__name=Role.REP)
    rep_rows = []
    for rep in reps:
        system = called_figures(per_owner.get(rep.pk, Figures()))
        own = latest(calls, kind=CallKind.REP, rep=rep)
        may_adjust = current and ForecastCall.may_call_for(user, rep.team)
        rep_rows.append({
            "rep": rep, "system": system, "call": own,
            "adjustment": latest(calls, kind=CallKind.ADJUSTMENT, rep=rep),
            "own_form": CallForm(initial=prefill(None, system),
                                 auto_id=f"call-{rep.pk}-%s")
            if current and rep == user else None,
            "adjust_form": CallForm(initial=prefill(own, system), auto_id=f"adjust-{rep.pk}-%s")
            if may_adjust else None,
        })
    team_rows = []
    for team in (scope.teams.filter(pk=scope.team.pk) if scope.team else scope.teams):
        if scope.rep:
            break
        system = called_figures(sum_figures(per_owner, team.members.values_list("pk", flat=True)))
        team_call = latest(calls, kind=CallKind.TEAM, team=team)
        team_rows.append({
            "team": team, "system": system, "call": team_call,
            "form": CallForm(initial=prefill(team_call, system), auto_id=f"team-{team.pk}-%s")
            if current and ForecastCall.may_call_for(user, team) else None,
        })
    return {
        "tab": "calls", "quarter": f"{year}-Q{quarter}", "current": current, "scope": scope,
        # A rep reads their own calls only, not what their manager made of them.
        "show_adjustments": sees_company(user) or user.is_manager,
        "system": called_figures(total), "rep_rows": rep_rows, "team_rows": team_rows,
        "history": calls.select_related("rep", "team", "made_by").order_by("-made_at", "-pk"),
    }


def prefill(call: ForecastCall | None, system: tuple[Decimal, Decimal]) -> dict:
    """An adjustment or a team call starts from the latest call, else from the system."""
    commit, best_case = (call.commit, call.best_case) if call else system
    return {"commit": commit, "best_case": best_case}


def sum_figures(per_owner: dict[int, Figures], owner_ids) -> Figures:
    total = Figures()
    for pk in owner_ids:
        figures = per_owner.get(pk)
        if figures:
            for category, amount in figures.amounts.items():
                total.amounts[category] += amount
    return total


def call_cells(call: ForecastCall | None) -> list:
    return [call.commit, call.best_case] if call else ["", ""]


def calls_csv(table: str, context: dict) -> HttpResponse:
    """One table of the calls page: the reps', the teams' or every call of the quarter."""
    name = f"calls-{table}-{context['quarter']}"
    figures = [_("System Commit"), _("System Best Case"), _("Call Commit"),
               _("Call Best Case")]
    if table == "reps":
        adjusted = context["show_adjustments"]
        return csv_response(
            name, [_("Account executive"), *figures,
                   *([_("Adjusted Commit"), _("Adjusted Best Case")] if adjusted else [])],
            ([str(row["rep"]), *row["system"], *call_cells(row["call"]),
              *(call_cells(row["adjustment"]) if adjusted else [])]
             for row in context["rep_rows"]))
    if table == "teams":
        return csv_response(name, [_("Team"), *figures],
                            ([str(row["team"]), *row["system"], *call_cells(row["call"])]
                             for row in context["team_rows"]))
    return csv_response(
        name, [_("When"), _("Kind"), _("For"), _("By"), _("Commit"), _("Best Case"),
               _("Note")],
        ([timezone.localtime(call.made_at).isoformat(timespec="minutes"),
          call.get_kind_display(), str(call.subject), str(call.made_by), call.commit,
          call.best_case, call.note] for call in context["history"]))


@login_required
def call_list(request) -> TemplateResponse | HttpResponse:
    """The calls page, or one of its tables as CSV (`?format=csv&table=reps|teams|history`)."""
    scope = requested_scope(request.user, team=request.GET.get("team", ""),
                           rep=request.GET.get("rep", ""))
    year, quarter = chosen_quarter(request)
    table = wanted_table(request, ("reps", "teams", "history"))
    context = calls_context(request, scope, year, quarter)
    if table:
        return calls_csv(table, context)
    return TemplateResponse(request, "forecasting/calls.html", context)


@require_POST
@login_required
def call_create(request) -> TemplateResponse | HttpResponseRedirect:
    """Make a call for the current quarter: one's own, an adjustment of a rep's call
    (`rep`), or a team's call (`team`)."""
    user = request.user
    scope = requested_scope(user)
    form = CallForm(request.POST)
    status = 400
    if form.is_valid():
        numbers = form.cleaned_data
        try:
            if request.POST.get("rep"):
                ForecastCall.adjust(by=user, rep=chosen(scope.reps, request.POST["rep"]),
                                    **numbers)
            elif request.POST.get("team"):
                ForecastCall.call_for_team(by=user, team=chosen(scope.teams,
                                                                request.POST["team"]),
                                           **numbers)
            else:
                ForecastCall.submit(by=user, **numbers)
        except ChangeRefused as refusal:
            messages.error(request, refusal.message)
            status = refusal.status_code
        else:
            messages.success(request, _("Your call is recorded."))
            return HttpResponseRedirect(reverse("forecasting:call_list"))
    else:
        messages.error(request, " ".join(str(error) for errors in form.errors.values()
                                         for error in errors))
    return TemplateResponse(request, "forecasting/calls.html",
                            calls_context(request, scope, *fiscal_quarter(timezone.localdate())),
                            status=status)


@login_required
def accuracy(request) -> TemplateResponse | HttpResponse:
    """Each caller's first, mid-quarter and last call of an ended quarter against what
    closed in it; the table as CSV with `?format=csv`."""
    user = request.user
    scope = requested_scope(user, team=request.GET.get("team", ""),
                           rep=request.GET.get("rep", ""))
    this_year, this_quarter = fiscal_quarter(timezone.localdate())
    index = this_year * 4 + this_quarter - 2  # the last quarter that ended
    year, quarter = chosen_quarter(request, default=(index // 4, index % 4 + 1))
    _first, after = fiscal_quarter_bounds(year, quarter)
    ended = after <= timezone.localdate()
    rows = []
    if ended:
        _total, per_owner = quarter_forecast(scope.opportunities, year, quarter)
        closed = {pk: figures.closed for pk, figures in per_owner.items()}
        members = {}
        for pk, team_id in User.objects.filter(
                Q(team__in=scope.teams)).values_list("pk", "team_id"):
            members.setdefault(team_id, []).append(pk)
        rows = quarter_accuracy(calls_in(scope, user), year, quarter, closed, members)
    if wanted_table(request, ("accuracy",)):
        return accuracy_csv(f"{year}-Q{quarter}", rows)
    return TemplateResponse(request, "forecasting/accuracy.html", {
        "tab": "accuracy", "quarter": f"{year}-Q{quarter}", "ended": ended, "rows": rows,
        "scope": scope,
    })


def accuracy_csv(quarter: str, rows) -> HttpResponse:
    kinds = {"rep": _("Own call"), "adjustment": _("Adjustment"), "team": _("Team call")}
    return csv_response(
        f"accuracy-{quarter}",
        [_("Caller"), _("Kind"), _("For"), _("Closed"), _("First call Commit"),
         _("First call (%)"), _("Mid-quarter call Commit"), _("Mid-quarter call (%)"),
         _("Last call Commit"), _("Last call (%)")],
        ([str(row.caller), kinds.get(row.kind, row.kind), str(row.subject), row.closed,
          *(value for _label, call, percent in row.moments
            for value in (call.commit if call else None, percent))] for row in rows))


def changes_csv(kind: str, quarter: str, found) -> HttpResponse:
    """One section of what changed; a standing as its category, amount, currency and
    close date, empty for an opportunity the snapshot did not hold."""
    def standing(value) -> list:
        if value is None:
            return ["", "", "", ""]
        return [str(value.category_label), value.amount, value.currency,
                value.close_date.isoformat()]

    return csv_response(
        f"changes-{kind}-{quarter}",
        [_("Opportunity"), _("Owner"), _("Amount"), _("Category then"), _("Amount then"),
         _("Currency then"), _("Close date then"), _("Category now"), _("Amount now"),
         _("Currency now"), _("Close date now"), _("Close date pushes")],
        ([change.name, change.owner, change.amount, *standing(change.then),
          *standing(change.now), change.pushes] for change in found))


@login_required
def changes(request) -> TemplateResponse | HttpResponse:
    """What changed in the quarter's forecast since a snapshot (the latest by default);
    one kind of change as CSV with `?format=csv&table=<kind>`."""
    user = request.user
    scope = requested_scope(user, team=request.GET.get("team", ""),
                           rep=request.GET.get("rep", ""))
    year, quarter = chosen_quarter(request)
    snapshots = Snapshot.objects.all()[:26]
    since = request.GET.get("since", "")
    snapshot = chosen(Snapshot.objects.all(), since) if since else snapshots.first()
    found = changes_since(snapshot, scope.opportunities, year, quarter) if snapshot else None
    table = wanted_table(request, KINDS)
    if table:
        return changes_csv(table, f"{year}-Q{quarter}", found.lists[table] if found else [])
    return TemplateResponse(request, "forecasting/changes.html", {
        "tab": "changes", "quarter": f"{year}-Q{quarter}", "scope": scope,
        "snapshots": snapshots, "snapshot": snapshot,
        "changes": found,
        "may_take": Snapshot.may_be_taken_by(user),
    })


@require_POST
@login_required
def snapshot_take(request) -> HttpResponseRedirect:
    """A snapshot now, on a manager's demand; a second click in the same minute finds it
    taken already."""
    if not Snapshot.may_be_taken_by(request.user):
        raise PermissionDenied(_("Only a manager takes a snapshot."))
    snapshot, taken = Snapshot.take(Snapshot.minute_slot(), by=request.user)
    if taken:
        messages.success(request, ngettext(
            "Snapshot taken: %d open opportunity.", "Snapshot taken: %d open opportunities.",
            snapshot.rows) % snapshot.rows)
    else:
        messages.info(request, _("A snapshot was taken this minute already."))
    return HttpResponseRedirect(reverse("forecasting:changes"))
