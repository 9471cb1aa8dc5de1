"""Forms only parse and validate input; the rules live on the models."""

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import (
    Account,
    Contact,
    ExchangeRate,
    Role,
    User,
    company_currency,
    fiscal_quarter_bounds,
    validate_single_line,
)
from pipeline.models import TEXT_LENGTH, Opportunity, OpportunityType
from pipeline.process import CRITERIA, DeadReason, ForecastCategory, Stage


class DateInput(forms.DateInput):
    input_type = "date"


class OpportunityForm(forms.ModelForm):
    new_account_name = forms.CharField(
        label=_("or a new account"), max_length=200, required=False,
        validators=[validate_single_line],
        help_text=_("Creates the account when it does not exist yet."),
    )
    # Editing only: the version the page was loaded at guards against lost edits.
    version = forms.IntegerField(
        required=False, min_value=1, widget=forms.HiddenInput,
        error_messages={"invalid": _("This page is out of date: reload it and try again."),
                        "min_value": _("This page is out of date: reload it and try again.")},
    )

    field_order = ["account", "new_account_name"]

    class Meta:
        model = Opportunity
        fields = [
            "account", "name", "type", "source", "amount", "currency",
            "expected_close_date", "next_step", "next_step_date",
        ]
        widgets = {"expected_close_date": DateInput, "next_step_date": DateInput}

    def __init__(self, *args, owners=None, **kwargs):
        """`owners`: whom a new opportunity may be opened for, when that is a choice (a
        manager's team); without, the user opens their own."""
        super().__init__(*args, **kwargs)
        if owners is not None:
            self.fields["owner"] = forms.ModelChoiceField(label=_("Owner"), queryset=owners)
            self.order_fields(["account", "new_account_name", "owner"])
        self.fields["account"].queryset = Account.objects.filter(archived_at__isnull=True)
        self.fields["account"].required = False
        # Most deals are in the company currency; others are typed as their code.
        self.fields["currency"].initial = company_currency()
        self.fields["currency"].widget.attrs["autocapitalize"] = "characters"
        if self.instance.pk:
            del self.fields["new_account_name"]
            self.fields["account"].disabled = True
            self.fields["version"].initial = self.instance.version
        else:
            del self.fields["version"]

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError(_("Use a three-letter currency code such as EUR."))
        if currency != self.instance.currency:  # a deal kept from before may keep its own
            ExchangeRate.validate_usable(currency)
        return currency

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount is not None and amount < 0:
            raise forms.ValidationError(_("The amount cannot be negative."))
        return amount

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("account") and not cleaned.get(
            "new_account_name", ""
        ).strip():
            self.add_error("account", _("Choose an account or name a new one."))
        return cleaned


class MoveForm(forms.Form):
    stage = forms.ChoiceField(label=_("Move to"), choices=Stage.choices)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=TEXT_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    dead_reason = forms.ChoiceField(
        label=_("Why is it dead?"), required=False,
        choices=[("", "—"), *DeadReason.choices],
    )
    account_executive = forms.ModelChoiceField(
        label=_("Account executive taking over"), required=False,
        queryset=User.objects.filter(groups__name=Role.REP, is_active=True),
    )
    undo = forms.BooleanField(required=False, widget=forms.HiddenInput)


class TickForm(forms.Form):
    criterion = forms.ChoiceField(choices=[(key, c.label) for key, c in CRITERIA.items()])
    note = forms.CharField(label=_("Evidence"), max_length=TEXT_LENGTH, required=False)
    not_required = forms.BooleanField(label=_("Not required"), required=False)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ContactChoiceForm(forms.Form):
    """Pick a contact of the opportunity's account, or add a new one by name."""

    contact = forms.ModelChoiceField(queryset=Contact.objects.none(), required=False)
    first_name = forms.CharField(max_length=100, required=False,
                                 validators=[validate_single_line])
    last_name = forms.CharField(max_length=100, required=False,
                                validators=[validate_single_line])
    title = forms.CharField(max_length=150, required=False, validators=[validate_single_line])
    confirmed_on = forms.DateField(required=False, widget=DateInput)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["contact"].queryset = account.contacts.filter(archived_at__isnull=True)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("contact") and not (
            cleaned.get("first_name", "").strip() and cleaned.get("last_name", "").strip()
        ):
            raise forms.ValidationError(_("Choose a contact or give a first and last name."))
        return cleaned


class ExtensionForm(forms.Form):
    days = forms.IntegerField(label=_("Extra days"), min_value=1, max_value=90)
    reason = forms.CharField(label=_("Reason"), max_length=TEXT_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class BoardFilterForm(forms.Form):
    """The board's filters; they live in the URL so a filtered board can be shared."""

    scope = forms.ChoiceField(
        label=_("Show"), required=False,
        choices=[("", _("Everything I may see")), ("mine", _("Mine")), ("team", _("My team"))],
    )
    owner = forms.ModelChoiceField(label=_("Owner"), required=False,
                                   queryset=User.objects.none(), empty_label=_("All owners"))
    type = forms.ChoiceField(label=_("Type"), required=False,
                             choices=[("", _("All types")), *OpportunityType.choices])
    category = forms.ChoiceField(label=_("Forecast category"), required=False,
                                 choices=[("", _("All categories")), *ForecastCategory.choices])
    quarter = forms.RegexField(label=_("Closing quarter"), required=False,
                               regex=r"^\d{4}-Q[1-4]$",
                               widget=forms.TextInput(attrs={"placeholder": "2026-Q4",
                                                             "size": 8,
                                                             "list": "closing-quarters"}))
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    dead = forms.BooleanField(label=_("Show dead"), required=False)
    closed = forms.ChoiceField(
        label=_("Closed"), required=False,
        choices=[("", _("This quarter")), ("all", _("All time"))],
    )

    def __init__(self, *args, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners

    def clean_quarter(self) -> str:
        value = self.cleaned_data["quarter"]
        if value:
            year, quarter = value.split("-Q")
            try:
                fiscal_quarter_bounds(int(year), int(quarter))
            except ValueError:  # beyond the calendar: year 0, or a quarter after 9999
                raise forms.ValidationError(
                    _("There is no quarter %s in the calendar.") % value) from None
        return value

    def closing_quarter(self) -> tuple[int, int] | None:
        value = self.cleaned_data.get("quarter")
        if not value:
            return None
        year, quarter = value.split("-Q")
        return int(year), int(quarter)
