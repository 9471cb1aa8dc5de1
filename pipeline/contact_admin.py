"""crm's contact admin with the erasure on request: an erasure also cleans the texts
kept about the contact's deals, which crm may not import, so the action lives here."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin import ContactAdmin
from crm.forms import ErasureForm
from crm.models import Contact
from pipeline.contact_privacy import erase_contact

admin.site.unregister(Contact)


@admin.register(Contact)
class ContactAdminWithErasure(ContactAdmin):
    actions = [*ContactAdmin.actions, "erase_selected"]

    def has_erase_permission(self, request) -> bool:
        return request.user.is_active and request.user.handles_privacy_requests

    @admin.action(description=_("Erase selected contacts on request…"),
                  permissions=["erase"])
    def erase_selected(self, request, queryset):
        """Anonymise the selected contacts (erase_contact), after a confirmation with the
        reason; those erased already are left as they are."""
        contacts = list(queryset.filter(erased_at__isnull=True).select_related("account"))
        form = ErasureForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for contact in contacts:
                erase_contact(contact, by=request.user, reason=form.cleaned_data["reason"])
                self.log_change(request, contact, gettext("Erased on request."))
            self.message_user(request, gettext("%(count)d erased.") % {"count": len(contacts)},
                              messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Erase contacts on request"),
            "opts": self.opts,
            "form": form,
            "contacts": contacts,
            "selected_pks": [contact.pk for contact in contacts],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "erase_selected",
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/crm/erase_contacts.html", context)
