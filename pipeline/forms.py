"""Forms only parse and validate input; the rules live on the models."""

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import (
    Account,
    Contact,
    ExchangeRate,
    Role,
    User,
    company_currency,
    quarter_from_text,
    validate_single_line,
)
from pipeline.models import (
    TEXT_LENGTH,
    Activity,
    ActivityKind,
    HandoffTask,
    InvalidChange,
    Offer,
    OfferLine,
    Opportunity,
    OpportunityType,
    PurchaseOrder,
    ReviewCheck,
    StepStatus,
)
from pipeline.models.dead_pool import AGE_OLDER, AGE_OVER_A_YEAR, AGE_RECENT
from pipeline.process import CRITERIA, KILLABLE_STAGES, DeadReason, ForecastCategory, Stage


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


class ActivityForm(forms.Form):
    """A call, meeting or e-mail to log: when, with whom, about what, planned or done."""

    kind = forms.ChoiceField(label=_("Kind"), choices=ActivityKind.choices)
    status = forms.ChoiceField(label=_("Status"), choices=[
        ("planned", _("Planned")), ("done", _("Done"))])
    at = forms.DateTimeField(label=_("When"), widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    minutes = forms.IntegerField(label=_("Minutes"), min_value=1, max_value=24 * 60,
                                 initial=Activity.DEFAULT_MINUTES)
    subject = forms.CharField(label=_("Subject"), max_length=200,
                              validators=[validate_single_line])
    contacts = forms.ModelMultipleChoiceField(label=_("With"), required=False,
                                              queryset=Contact.objects.none(),
                                              widget=forms.CheckboxSelectMultiple)
    notes = forms.CharField(label=_("Notes"), max_length=TEXT_LENGTH, required=False,
                            widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contacts"].queryset = account.contacts.filter(archived_at__isnull=True)


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
            try:
                quarter_from_text(value)
            except ValueError:  # beyond the calendar: year 0, or a quarter after 9999
                raise forms.ValidationError(
                    _("There is no quarter %s in the calendar.") % value) from None
        return value

    def closing_quarter(self) -> tuple[int, int] | None:
        value = self.cleaned_data.get("quarter")
        return quarter_from_text(value) if value else None


class DeadPoolFilterForm(forms.Form):
    """The dead pool's filters; in the URL like the board's, so the CSV export and the
    pages after the first get the same rows."""

    stage = forms.ChoiceField(
        label=_("Died in"), required=False,
        choices=[("", _("Any stage")),
                 *((stage.value, stage.label) for stage in KILLABLE_STAGES),
                 (Stage.PENDING.value, Stage.PENDING.label)],
    )
    reason = forms.ChoiceField(label=_("Reason"), required=False,
                               choices=[("", _("Any reason")), *DeadReason.choices])
    owner = forms.ModelChoiceField(label=_("Owner"), required=False,
                                   queryset=User.objects.none(), empty_label=_("All owners"))
    account = forms.CharField(label=_("Account"), required=False, max_length=100)
    age = forms.ChoiceField(label=_("Dead for"), required=False)
    claimed = forms.ChoiceField(
        label=_("Claimed"), required=False,
        choices=[("", _("Claimed or not")), ("unclaimed", _("Unclaimed")),
                 ("claimed", _("Claimed")), ("mine", _("Claimed by me"))],
    )

    def __init__(self, *args, owners, window_days: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners
        self.fields["age"].choices = [
            ("", _("Any time")),
            (AGE_RECENT, _("Less than %d days (reopens where it died)") % window_days),
            (AGE_OLDER, _("%d days to a year") % window_days),
            (AGE_OVER_A_YEAR, _("A year or more")),
        ]


class ReopenForm(forms.Form):
    reason = forms.CharField(label=_("Why reopen it?"), max_length=TEXT_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class OfferForm(forms.ModelForm):
    class Meta:
        model = Offer
        fields = ["service_start", "service_end", "payment_terms", "terms"]
        widgets = {"service_start": DateInput, "service_end": DateInput}

    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("service_start"), cleaned.get("service_end")
        if start and end and end < start:
            self.add_error("service_end", _("The service cannot end before it starts."))
        return cleaned


class OfferLineForm(forms.ModelForm):
    class Meta:
        model = OfferLine
        fields = ["kind", "description", "quantity", "list_price", "discount_percent"]

    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class PurchaseOrderForm(forms.ModelForm):
    """What the rep copies from the customer's order; the document is checked by its
    content when it is recorded (Opportunity.record_purchase_order)."""

    class Meta:
        model = PurchaseOrder
        fields = ["number", "amount", "currency", "terms", "service_start", "service_end"]
        widgets = {"service_start": DateInput, "service_end": DateInput}

    document = forms.FileField(label=_("Document (PDF, PNG, JPEG or Word)"))
    lines = forms.MultipleChoiceField(label=_("Offer lines it covers"), required=False,
                                      widget=forms.CheckboxSelectMultiple)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, offer_lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lines"].choices = [(line.pk, line.description) for line in offer_lines]

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("service_start"), cleaned.get("service_end")
        if start and end and end < start:
            self.add_error("service_end", _("The service cannot end before it starts."))
        return cleaned


class ReviewForm(forms.Form):
    """Sales ops' decision on a pending order: the checks that hold, or those that failed
    with a note."""

    checks = forms.MultipleChoiceField(label=_("Checks"), choices=ReviewCheck.choices,
                                       required=False, widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(label=_("Note for the owner (when rejecting)"), required=False,
                           max_length=TEXT_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class VersionForm(forms.Form):
    """For a change that posts nothing but the version the page was loaded at."""

    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    @classmethod
    def posted(cls, request) -> int | None:
        """The version posted (None without one); a refusal when it is no number."""
        form = cls(request.POST)
        if not form.is_valid():
            raise InvalidChange(gettext("This page is out of date: reload it and try again."))
        return form.cleaned_data["version"]


class HandoffAssignForm(forms.Form):
    assigned_to = forms.ModelChoiceField(label=_("Assign to"),
                                         queryset=HandoffTask.sales_ops_colleagues())


class ClosePlanForm(forms.Form):
    target_signature_date = forms.DateField(label=_("Target signature date"), widget=DateInput)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class PlanStepForm(forms.Form):
    """A step: its owner is someone of ours ("user:3") or a contact ("contact:7")."""

    title = forms.CharField(label=_("Step"), max_length=200,
                            validators=[validate_single_line])
    owner = forms.ChoiceField(label=_("Owner"))
    due_date = forms.DateField(label=_("Due"), widget=DateInput)
    status = forms.ChoiceField(label=_("Status"), choices=StepStatus.choices,
                               initial=StepStatus.NOT_STARTED)
    material = forms.TypedChoiceField(
        label=_("Is this a material change?"), required=False, coerce=lambda v: v == "yes",
        empty_value=None, widget=forms.RadioSelect,
        choices=[("yes", _("Yes: the customer accepts the plan again")),
                 ("no", _("No: a correction, the acceptance stands"))],
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, users=(), contacts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.users = {str(user.pk): user for user in users}
        self.contacts = {str(contact.pk): contact for contact in contacts}
        self.fields["owner"].choices = [
            (_("Our side"), [(f"user:{pk}", str(user)) for pk, user in self.users.items()]),
            (_("The customer's side"), [(f"contact:{pk}", str(contact))
                                        for pk, contact in self.contacts.items()]),
        ]

    def owners(self) -> dict:
        """owner_user and owner_contact, as the model methods take them."""
        side, _colon, pk = self.cleaned_data["owner"].partition(":")
        return {"owner_user": self.users.get(pk) if side == "user" else None,
                "owner_contact": self.contacts.get(pk) if side == "contact" else None}


class ShareLinkForm(forms.Form):
    contact = forms.ModelChoiceField(label=_("For"), queryset=Contact.objects.none())
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=90,
                              initial=30)

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = account.contacts.filter(archived_at__isnull=True)
