from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Team, fiscal_quarter
from forecasting.forms import TargetForm
from forecasting.models import Target
from pipeline.models import ChangeRefused


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
