from django.utils.functional import SimpleLazyObject

from pipeline.models import ImportBatch, Opportunity
from pipeline.process import Stage


def orders_waiting(request):
    """For sales ops, the count beside "Orders to review" in the top bar. Lazy: only pages
    that draw the top bar count."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.reviews_orders:
        return {}
    return {"orders_waiting": SimpleLazyObject(
        Opportunity.objects.filter(stage=Stage.PENDING).count)}


def may_import(request):
    """Whether to offer the import from another CRM (on the board)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"may_import": SimpleLazyObject(lambda: ImportBatch.may_import(user))}
