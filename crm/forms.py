from django import forms
from django.utils.translation import gettext_lazy as _

from crm.erasure import REASON_LENGTH
from crm.models import Account, Contact


class AccountForm(forms.ModelForm):
    website = forms.URLField(label=_("Website"), required=False, assume_scheme="https")

    class Meta:
        model = Account
        fields = ["name", "website", "industry"]


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["first_name", "last_name", "title", "email", "phone"]


class ErasureForm(forms.Form):
    """The confirmation of an erasure: why (who asked, and when). Cannot be undone."""

    reason = forms.CharField(
        label=_("Reason"), max_length=REASON_LENGTH, strip=True,
        help_text=_("Who asked for the erasure, and when. Do not repeat the contact's name: "
                    "it would be removed from the log anyway."),
    )
