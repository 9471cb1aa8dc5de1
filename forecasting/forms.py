from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Team


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
