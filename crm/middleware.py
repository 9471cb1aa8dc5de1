"""Requests refused before any view sees them."""

from django.http import HttpResponseBadRequest
from django.template.loader import render_to_string
from django.utils.translation import gettext as _


def refuse_nul_characters(get_response):
    """Answer 400 to a request carrying a NUL character in its path, parameters or cookies.

    PostgreSQL cannot hold one in text and psycopg refuses to send it, so such a value
    reaching any query (the admin's search and filters, a search box, the session cookie)
    failed with a server error. No field of the app accepts one.
    """

    def middleware(request):
        if carries_nul(request):
            page = render_to_string("400.html", {
                "message": _("The request contains a NUL character, which no field accepts. "
                             "Nothing was changed."),
            })
            return HttpResponseBadRequest(page)
        return get_response(request)

    return middleware


def carries_nul(request) -> bool:
    texts = [request.path, *request.COOKIES, *request.COOKIES.values()]
    forms = [request.GET, request.POST] if request.method == "POST" else [request.GET]
    for form in forms:
        for key, values in form.lists():
            texts += [key, *values]
    return any("\x00" in text for text in texts)
