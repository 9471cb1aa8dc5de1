from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse

from pipeline.models import Opportunity


@login_required
def opportunity_list(request):
    opportunities = Opportunity.objects.visible_to(request.user).select_related("account")
    return TemplateResponse(request, "pipeline/opportunity_list.html",
                            {"opportunities": opportunities})
