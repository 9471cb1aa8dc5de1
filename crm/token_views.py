"""The user's API tokens: made and revoked on a page of their own."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from crm.models import validate_single_line
from crm.tokens import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("What the token is for"), max_length=100,
                           validators=[validate_single_line])


@login_required
def token_list(request):
    """The user's tokens; a POST makes one and shows its secret on this answer only."""
    form = TokenForm(request.POST or None)
    secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _token, secret = ApiToken.issue(request.user, form.cleaned_data["name"])
            form = TokenForm()
        else:
            status = 400
    tokens = request.user.api_tokens.all()
    return TemplateResponse(request, "crm/token_list.html", {
        "form": form, "tokens": tokens, "secret": secret,
        "api_docs": reverse("api:openapi-view"),
    }, status=status)


@require_POST
@login_required
def token_revoke(request, pk: int):
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    token.revoke()
    tokens = request.user.api_tokens.all()
    return TemplateResponse(request, "crm/token_list.html", {
        "form": TokenForm(), "tokens": tokens,
        "revoked": _("Token “%s” revoked: scripts using it are refused from now on.")
        % token.name,
        "api_docs": reverse("api:openapi-view"),
    })
