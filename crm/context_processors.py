from django.conf import settings
from django.utils.functional import SimpleLazyObject


def company(request):
    return {"company_currency": settings.COMPANY_CURRENCY}


def unread_notifications(request):
    """The count beside "Notifications" in the top bar. Lazy: only pages that draw the top
    bar count (htmx fragments never do)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": SimpleLazyObject(user.notifications.unread().count)}
