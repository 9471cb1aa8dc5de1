from django.urls import path

from forecasting import views

app_name = "forecasting"
urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/opportunities/", views.opportunity_list, name="opportunity_list"),
    path("forecast/quotas/", views.quota_list, name="quota_list"),
    path("forecasting/targets/", views.target_list, name="target_list"),
]
