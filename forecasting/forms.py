from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Team, User, quarter_from_text


class TargetForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none())
    fiscal_year = forms.IntegerField(label=_("Fiscal year"), min_value=2000, max_value=2100)
    quarter = forms.TypedChoiceField(label=_("Quarter"), coerce=int,
                                     choices=[(q, f"Q{q}") for q in range(1, 5)])
    amount = forms.DecimalField(label=_("Target"), min_value=0, max_digits=14,
                                decimal_places=2)

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class ForecastForm(forms.Form):
    """The dashboard's quarter and scope; they live in the URL so a view can be shared."""

    quarter = forms.RegexField(label=_("Quarter"), required=False, regex=r"^\d{4}-Q[1-4]$",
                               widget=forms.TextInput(attrs={"size": 8,
                                                             "list": "forecast-quarters"}))
    team = forms.ModelChoiceField(label=_("Team"), required=False,
                                  queryset=Team.objects.none(), empty_label=_("All I may see"))

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams

    def clean_quarter(self) -> str:
        value = self.cleaned_data["quarter"]
        if value:
            try:
                quarter_from_text(value)
            except ValueError:
                raise forms.ValidationError(
                    _("There is no quarter %s in the calendar.") % value) from None
        return value


class AnalysisForm(ForecastForm):
    """The funnel's and calibration's quarter and scope (the company, a team, one rep),
    and which table to download as CSV."""

    rep = forms.ModelChoiceField(label=_("Rep"), required=False,
                                 queryset=User.objects.none(), empty_label=_("Every rep"))
    format = forms.ChoiceField(label=_("Format"), required=False, widget=forms.HiddenInput,
                               choices=[("", "HTML"), ("csv", "CSV")])
    table = forms.ChoiceField(label=_("Table"), required=False, widget=forms.HiddenInput,
                              choices=[(name, name) for name in
                                       ("funnel", "calibration", "calibration_days")])

    def __init__(self, *args, teams, reps, **kwargs):
        super().__init__(*args, teams=teams, **kwargs)
        self.fields["rep"].queryset = reps

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
