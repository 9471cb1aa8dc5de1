from django import forms
from django.utils.translation import gettext_lazy as _

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
