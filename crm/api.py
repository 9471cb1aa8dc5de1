"""The API's accounts and contacts, and what every part of the API shares: token
authentication, cursor paging and the answer to a refused request.

The API object itself is assembled in forecasting/api.py, the app that may import the
others (crm imports neither pipeline nor forecasting)."""


from datetime import datetime

from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import CursorPagination, paginate
from ninja.security import HttpBearer

from crm.forms import AccountForm, ContactForm
from crm.models import Account, Contact, Role
from crm.tokens import ApiToken


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <secret>`: the request acts as the token's user, so every
    permission check of the app (visible_to, can_edit, ...) applies to it unchanged."""

    def authenticate(self, request, token: str):
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
        return user


class Page(CursorPagination):
    """Lists come in pages of at most 100, oldest first; `next` links to the next page
    with an opaque cursor, so rows added meanwhile neither repeat nor go missing."""

    def __init__(self, **kwargs):
        kwargs.setdefault("ordering", ("pk",))
        kwargs.setdefault("page_size", 50)
        kwargs.setdefault("max_page_size", 100)
        super().__init__(**kwargs)

    class Input(CursorPagination.Input):
        page_size: int | None = Field(None, ge=1, le=100)


class Refusal(Schema):
    """Why a request was refused, in words for a person; `errors` names bad fields (400:
    values the app's rules refuse; 422: values that do not fit the schema)."""

    detail: str
    errors: dict[str, list[str]] | None = None


class Invalid(Exception):
    """Input that a form of the app refused: 400 with each field's messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class Missing(Http404):
    """A record that is not there, with a message saying which."""


def form_errors(form) -> dict[str, list[str]]:
    return {field: [str(message) for message in messages]
            for field, messages in form.errors.items()}


def cleaned(form) -> dict:
    """The form's cleaned data, or Invalid with its errors."""
    if not form.is_valid():
        raise Invalid(form_errors(form))
    return form.cleaned_data


def saved(form):
    """The form's object saved, or Invalid with its errors."""
    cleaned(form)
    return form.save()


def merged(instance, fields: list[str], changes: dict) -> dict:
    """A PATCH's form data: the instance's values, overlaid with the changed ones."""
    data = {name: getattr(instance, name) for name in fields}
    data.update(changes)
    return {name: "" if value is None else value for name, value in data.items()}


router = Router(tags=["accounts and contacts"])


class Me(Schema):
    id: int
    username: str
    name: str
    roles: list[str]


@router.get("/me", response=Me, summary="Who the token acts as")
def me(request):
    user = request.user
    return {"id": user.pk, "username": user.get_username(), "name": str(user),
            "roles": sorted(role for role in Role.values if user.has_role(role))}


class AccountOut(Schema):
    id: int
    name: str
    website: str
    industry: str
    created_at: datetime


class AccountIn(Schema):
    name: str = Field(..., max_length=200, examples=["Initech"])
    website: str = Field("", max_length=200, examples=["https://initech.example"])
    industry: str = Field("", max_length=100, examples=["Software"])


class AccountPatch(Schema):
    name: str | None = Field(None, max_length=200)
    website: str | None = Field(None, max_length=200)
    industry: str | None = Field(None, max_length=100)


def open_accounts():
    return Account.objects.filter(archived_at__isnull=True)


@router.get("/accounts", response=list[AccountOut], summary="Accounts, by name if given")
@paginate(Page)
def account_list(request, name: str = ""):
    accounts = open_accounts()
    return accounts.filter(name__icontains=name) if name else accounts


@router.post("/accounts", response={201: AccountOut}, summary="Create an account")
def account_create(request, payload: AccountIn):
    return Status(201, saved(AccountForm(payload.dict())))


@router.get("/accounts/{int:account_id}", response=AccountOut)
def account_detail(request, account_id: int):
    return get_object_or_404(open_accounts(), pk=account_id)


@router.patch("/accounts/{int:account_id}", response=AccountOut, summary="Change an account")
def account_update(request, account_id: int, payload: AccountPatch):
    account = get_object_or_404(open_accounts(), pk=account_id)
    fields = list(AccountForm.Meta.fields)
    data = merged(account, fields, payload.dict(exclude_unset=True, exclude_none=True))
    return saved(AccountForm(data, instance=account))


class ContactOut(Schema):
    id: int
    account: int = Field(..., alias="account_id")
    first_name: str
    last_name: str
    title: str
    email: str
    phone: str


class ContactIn(Schema):
    account: int = Field(..., ge=1, examples=[1])
    first_name: str = Field(..., max_length=100, examples=["Ada"])
    last_name: str = Field(..., max_length=100, examples=["Lovelace"])
    title: str = Field("", max_length=150, examples=["CFO"])
    email: str = Field("", max_length=254, examples=["ada@initech.example"])
    phone: str = Field("", max_length=50)


class ContactPatch(Schema):
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=150)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=50)


def current_contacts():
    return Contact.objects.filter(archived_at__isnull=True, account__archived_at__isnull=True)


@router.get("/contacts", response=list[ContactOut], summary="Contacts, of one account if given")
@paginate(Page)
def contact_list(request, account: int | None = Query(None, ge=1)):
    contacts = current_contacts()
    return contacts.filter(account_id=account) if account else contacts


@router.post("/contacts", response={201: ContactOut}, summary="Add a contact to an account")
def contact_create(request, payload: ContactIn):
    account = get_object_or_404(open_accounts(), pk=payload.account)
    data = payload.dict(exclude={"account"})
    return Status(201, saved(ContactForm(data, instance=Contact(account=account))))


@router.get("/contacts/{int:contact_id}", response=ContactOut)
def contact_detail(request, contact_id: int):
    return get_object_or_404(current_contacts(), pk=contact_id)


@router.patch("/contacts/{int:contact_id}", response=ContactOut, summary="Change a contact")
def contact_update(request, contact_id: int, payload: ContactPatch):
    contact = get_object_or_404(current_contacts(), pk=contact_id)
    fields = list(ContactForm.Meta.fields)
    data = merged(contact, fields, payload.dict(exclude_unset=True, exclude_none=True))
    return saved(ContactForm(data, instance=contact))
