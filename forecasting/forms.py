from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Team, User, quarter_from_text
from pipeline.process import ForecastCategory


def quarter_field(**kwargs) -> forms.RegexField:
    return forms.RegexField(label=_("Quarter"), regex=r"^\d{4}-Q[1-4]$",
                            widget=forms.TextInput(attrs={"size": 8,
                                                          "list": "forecast-quarters"}),
                            **kwargs)


class QuarterForm(forms.Form):
    """A fiscal quarter written "2027-Q1"; in the URL so a view can be shared."""

    quarter = quarter_field(required=False)

    def clean_quarter(self) -> str:
        value = self.cleaned_data["quarter"]
        if value:
            try:
                quarter_from_text(value)
            except ValueError:
                raise forms.ValidationError(
                    _("There is no quarter %s in the calendar.") % value) from None
        return value


class ForecastForm(QuarterForm):
    """The dashboard's quarter and scope: everything the user may see, a team, or a rep."""

    team = forms.ModelChoiceField(label=_("Team"), required=False,
                                  queryset=Team.objects.none(), empty_label=_("All I may see"))
    rep = forms.ModelChoiceField(label=_("Rep"), required=False,
                                 queryset=User.objects.none(), empty_label=_("Every rep"))

    def __init__(self, *args, teams, reps, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["rep"].queryset = reps


class FigureForm(ForecastForm):
    """The opportunities behind one figure of the dashboard."""

    figure = forms.ChoiceField(label=_("Figure"), required=False, choices=[
        ("", _("All of the quarter")), ("open", _("Open pipeline")),
        *[(category.value, category.label) for category in (
            ForecastCategory.CLOSED, ForecastCategory.COMMIT, ForecastCategory.BEST_CASE,
            ForecastCategory.PIPELINE)]])


class QuotaForm(QuarterForm):
    """A quota for each rep of the manager's teams; a blank one stays as it is."""

    def __init__(self, *args, reps, **kwargs):
        super().__init__(*args, **kwargs)
        self.reps = list(reps)
        for rep in self.reps:
            self.fields[self.field_name(rep)] = forms.DecimalField(
                label=str(rep), required=False, min_value=0, max_digits=14, decimal_places=2)

    @staticmethod
    def field_name(rep: User) -> str:
        return f"quota_{rep.pk}"

    def quotas(self) -> list[tuple[User, object]]:
        """(rep, amount) for every quota filled in."""
        return [(rep, self.cleaned_data[self.field_name(rep)]) for rep in self.reps
                if self.cleaned_data.get(self.field_name(rep)) is not None]


class AnalysisForm(ForecastForm):
    """The funnel's and calibration's quarter and scope (the company, a team, one rep),
    and which table to download as CSV."""

    format = forms.ChoiceField(label=_("Format"), required=False, widget=forms.HiddenInput,
                               choices=[("", "HTML"), ("csv", "CSV")])
    table = forms.ChoiceField(label=_("Table"), required=False, widget=forms.HiddenInput,
                              choices=[(name, name) for name in
                                       ("funnel", "calibration", "calibration_days")])

    def clean_quarter(self) -> str:
        """A quarter whose four quarters back (the calibration's window) and local
        midnights are still in the calendar."""
        value = super().clean_quarter()
        if value and not 1900 <= quarter_from_text(value)[0] <= 9998:
            raise forms.ValidationError(
                _("There is no quarter %s in the calendar.") % value)
        return value

    def out_of_reach(self) -> bool:
        """A team or rep was asked for that this user may not see (or that does not
        exist): the view answers 404 and shows no figures."""
        return any(error.code == "invalid_choice"
                   for name in ("team", "rep") for error in self.errors.as_data().get(name, ()))
