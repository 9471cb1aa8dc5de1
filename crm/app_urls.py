from django.urls import path

from crm import views

app_name = "crm"
urlpatterns = [
    path("notifications/", views.notification_list, name="notification_list"),
]
