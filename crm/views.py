from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from crm.forms import AccountForm, ContactForm
from crm.models import Account, Contact, ErasureRefused


@login_required
def account_list(request):
    query = request.GET.get("q", "").strip()
    accounts = Account.objects.filter(archived_at__isnull=True)
    if query:
        accounts = accounts.filter(name__icontains=query)
    return TemplateResponse(request, "crm/account_list.html",
                            {"accounts": accounts[:200], "query": query})


@login_required
def account_create(request):
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        messages.success(request, _("Account “%s” created.") % account.name)
        return HttpResponseRedirect(reverse("pipeline:account_detail", args=[account.pk]))
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "crm/account_form.html", {"form": form}, status=status)


@login_required
def account_edit(request, pk: int):
    account = get_object_or_404(Account, pk=pk, archived_at__isnull=True)
    form = AccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Account “%s” saved.") % account.name)
        return HttpResponseRedirect(reverse("pipeline:account_detail", args=[account.pk]))
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "crm/account_form.html",
                            {"form": form, "account": account}, status=status)


@login_required
def contact_edit(request, pk: int):
    contact = get_object_or_404(Contact.objects.select_related("account"), pk=pk,
                                archived_at__isnull=True)
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Contact %s saved.") % contact)
        return HttpResponseRedirect(reverse("pipeline:account_detail", args=[contact.account_id]))
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "crm/contact_form.html",
                            {"form": form, "contact": contact}, status=status)


@require_POST
@login_required
def contact_restore(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk, archived_at__isnull=False)
    if contact.is_erased:
        return TemplateResponse(request, "forbidden.html", {
            "refusal": ErasureRefused(_("An erased contact cannot be changed or restored.")),
        }, status=409)
    contact.restore()
    messages.success(request, _("Contact %s restored.") % contact)
    return HttpResponseRedirect(reverse("pipeline:account_detail", args=[contact.account_id]))


@login_required
def notification_list(request):
    notifications = request.user.notifications.all()[:100]
    return TemplateResponse(request, "crm/notification_list.html",
                            {"notifications": notifications})


@login_required
def notification_open(request, pk: int):
    """Follow a notification's link; following it reads it."""
    notification = get_object_or_404(request.user.notifications, pk=pk)
    notification.mark_read()
    if notification.link and url_has_allowed_host_and_scheme(
            notification.link, allowed_hosts={request.get_host()},
            require_https=request.is_secure()):
        return HttpResponseRedirect(notification.link)
    return HttpResponseRedirect(reverse("crm:notification_list"))


@require_POST
@login_required
def notification_read(request):
    request.user.notifications.unread().update(read_at=timezone.now())
    return HttpResponseRedirect(reverse("crm:notification_list"))


class LoginView(auth_views.LoginView):
    """Signing in applies the language the user chose, in any browser: LocaleMiddleware
    reads it from the language cookie, which a new browser does not have yet."""

    def form_valid(self, form):
        response = super().form_valid(form)
        language = form.get_user().language
        if language in dict(settings.LANGUAGES):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, language,
                max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


def locked_out(request, original_response=None, credentials=None):
    """django-axes answers a locked-out login (the app's or the admin's) with this page."""
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT,
               "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)}
    return TemplateResponse(request, "registration/locked_out.html", context,
                            status=settings.AXES_HTTP_RESPONSE_CODE).render()


def favicon(request):
    """Browsers and tools that ask for /favicon.ico without reading the page's icon link."""
    return HttpResponseRedirect(static("favicon.svg"))


@require_POST
def language_set(request):
    """Switch the interface language; a signed-in user's notifications follow it."""
    response = set_language(request)
    language = request.POST.get("language")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        request.user.language = language
        request.user.save(update_fields=["language"])
    return response
