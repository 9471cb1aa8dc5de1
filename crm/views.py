from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse


@login_required
def notification_list(request):
    notifications = request.user.notifications.all()[:100]
    return TemplateResponse(request, "crm/notification_list.html",
                            {"notifications": notifications})
