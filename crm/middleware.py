"""Middleware of our own: requests refused before any view sees them, and the request log."""

import logging
import time

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


request_log = logging.getLogger("progression.requests")


def log_requests(get_response):
    """One log line per request: method, path, status, duration and the user's id (None
    when nobody is signed in). With LOG_FORMAT=json each is one JSON object."""

    def middleware(request):
        started = time.perf_counter()
        response = get_response(request)
        if request_log.isEnabledFor(logging.INFO):
            user = getattr(request, "user", None)
            request_log.info(
                "%s %s %s", request.method, request.path, response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": user.pk if user is not None and user.is_authenticated else None,
                },
            )
        return response

    return middleware
