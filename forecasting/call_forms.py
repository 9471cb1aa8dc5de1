"""Forms of the forecast calls and the snapshot pages: input types only; the rules live
on ForecastCall and Snapshot."""

from django import forms
from django.utils.translation import gettext_lazy as _

from pipeline.models import TEXT_LENGTH


class CallForm(forms.Form):
    commit = forms.DecimalField(label=_("Commit"), min_value=0, max_digits=14,
                                decimal_places=2)
    best_case = forms.DecimalField(label=_("Best Case"), min_value=0, max_digits=14,
                                   decimal_places=2)
    note = forms.CharField(label=_("Note"), required=False, max_length=TEXT_LENGTH,
                           widget=forms.Textarea(attrs={"rows": 2}))
