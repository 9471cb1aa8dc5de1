"""The account page and the changes made on it that touch opportunities: the contacts a
deal may rest on. In pipeline, not crm, because it lists opportunities (crm never imports
the other apps)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.forms import ContactForm
from crm.models import Account, Contact
from pipeline.models import ChangeRefused, Opportunity, archive_contact


@login_required
def account_detail(request, pk: int):
    return account_page(request, get_object_or_404(Account, pk=pk))


def account_page(request, account: Account, *, contact_form: ContactForm | None = None,
                 refusal: str = "", status: int = 200) -> TemplateResponse:
    """The account with its current contacts and the opportunities this user may see."""
    opportunities = Opportunity.objects.visible_to(request.user).filter(account=account)
    return TemplateResponse(request, "pipeline/account_detail.html", {
        "account": account,
        "contacts": account.contacts.filter(archived_at__isnull=True),
        "archived_contacts": account.contacts.filter(archived_at__isnull=False),
        "opportunities": opportunities.select_related("owner"),
        "contact_form": contact_form or ContactForm(),
        "refusal": refusal,
    }, status=status)


@require_POST
@login_required
def contact_create(request, pk: int):
    account = get_object_or_404(Account, pk=pk)
    form = ContactForm(request.POST)
    if not form.is_valid():
        return account_page(request, account, contact_form=form, status=400)
    contact = form.save(commit=False)
    contact.account = account
    contact.save()
    messages.success(request, _("Contact %s added.") % contact)
    return HttpResponseRedirect(reverse("pipeline:account_detail", args=[account.pk]))


@require_POST
@login_required
def contact_archive(request, pk: int):
    contact = get_object_or_404(Contact.objects.select_related("account"), pk=pk,
                                archived_at__isnull=True)
    try:
        archive_contact(contact, by=request.user)
    except ChangeRefused as refusal:
        return account_page(request, contact.account, refusal=refusal.message,
                            status=refusal.status_code)
    messages.success(request, _("Contact %s archived.") % contact)
    return HttpResponseRedirect(reverse("pipeline:account_detail", args=[contact.account_id]))
