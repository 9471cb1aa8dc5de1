"""The contact page: everything stored about one contact, as this user may see it, and
sales ops' privacy requests on it (the JSON export and the erasure). In pipeline, not crm,
because it lists their opportunities, committees and activities."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from crm.forms import ErasureForm
from crm.models import Contact, ErasureRefused
from pipeline.contact_privacy import contact_record, erase_contact
from pipeline.models import ChangeForbidden, Opportunity


def visible_contact(request, pk: int) -> Contact:
    return get_object_or_404(Contact.objects.select_related("account"), pk=pk)


def record_for(request, contact: Contact) -> dict:
    return contact_record(contact, Opportunity.objects.visible_to(request.user))


def not_for_this_role(request) -> TemplateResponse | None:
    """403 for everyone but sales ops and superusers; None for them."""
    if request.user.handles_privacy_requests:
        return None
    return TemplateResponse(request, "forbidden.html", {
        "refusal": ChangeForbidden(_("Sales ops export and erase a contact's data.")),
    }, status=403)


@login_required
def contact_detail(request, pk: int) -> TemplateResponse:
    contact = visible_contact(request, pk)
    return TemplateResponse(request, "pipeline/contact_detail.html", {
        "contact": contact, "record": record_for(request, contact),
        "erasures": contact.erasures.select_related("erased_by").order_by("erased_at"),
    })


@login_required
def contact_export(request, pk: int) -> HttpResponse:
    """What the contact page shows, as a JSON download, for a request for access."""
    contact = visible_contact(request, pk)
    if refusal := not_for_this_role(request):
        return refusal
    body = json.dumps(record_for(request, contact), cls=DjangoJSONEncoder, indent=2,
                      ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
    return response


@login_required
def contact_erase(request, pk: int) -> TemplateResponse | HttpResponseRedirect:
    """GET: the confirmation with its reason field. POST: the erasure, which cannot be
    undone."""
    contact = visible_contact(request, pk)
    if refusal := not_for_this_role(request):
        return refusal
    form = ErasureForm(request.POST or None)
    context = {"contact": contact, "form": form}
    if contact.is_erased:
        context["refusal"] = _("This contact was erased already.")
        return TemplateResponse(request, "pipeline/contact_erase.html", context, status=409)
    if request.method != "POST":
        return TemplateResponse(request, "pipeline/contact_erase.html", context)
    if not form.is_valid():
        return TemplateResponse(request, "pipeline/contact_erase.html", context, status=400)
    try:
        erase_contact(contact, by=request.user, reason=form.cleaned_data["reason"])
    except ErasureRefused as refused:
        context["refusal"] = refused.message
        return TemplateResponse(request, "pipeline/contact_erase.html", context,
                                status=refused.status_code)
    messages.success(request, _("The contact was erased; their deals and history are kept."))
    return HttpResponseRedirect(reverse("pipeline:contact_detail", args=[contact.pk]))
