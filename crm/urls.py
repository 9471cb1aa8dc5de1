from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crm.views import LoginView, favicon

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("favicon.ico", favicon, name="favicon"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("crm.password_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("pipeline.urls")),
    path("", include("crm.app_urls")),
    path("", include("forecasting.urls")),
    # The API spans all three apps, so forecasting assembles it (docs/architecture.md).
    path("", include("forecasting.api_urls")),
]
