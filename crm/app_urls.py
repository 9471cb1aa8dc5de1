from django.urls import path

from crm import token_views, views

app_name = "crm"
urlpatterns = [
    path("accounts/", views.account_list, name="account_list"),
    path("accounts/new/", views.account_create, name="account_create"),
    path("accounts/<int:pk>/edit/", views.account_edit, name="account_edit"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/restore/", views.contact_restore, name="contact_restore"),
    path("account/tokens/", token_views.token_list, name="token_list"),
    path("account/tokens/<int:pk>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("language/", views.language_set, name="language_set"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/read/", views.notification_read, name="notification_read"),
    path("notifications/<int:pk>/", views.notification_open, name="notification_open"),
]
