from django.conf import settings


def company(request):
    return {"company_currency": settings.COMPANY_CURRENCY}
