from django.urls import path

from forecasting import analysis_views, call_views, views

app_name = "forecasting"
urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/opportunities/", views.opportunity_list, name="opportunity_list"),
    path("forecast/quotas/", views.quota_list, name="quota_list"),
    path("forecast/calls/", call_views.call_list, name="call_list"),
    path("forecast/calls/new/", call_views.call_create, name="call_create"),
    path("forecast/accuracy/", call_views.accuracy, name="accuracy"),
    path("forecast/changes/", call_views.changes, name="changes"),
    path("forecast/snapshots/take/", call_views.snapshot_take, name="snapshot_take"),
    path("forecast/funnel/", analysis_views.funnel_page, name="forecast_funnel"),
    path("forecast/calibration/", analysis_views.calibration_page, name="forecast_calibration"),
    path("forecasting/targets/", views.target_list, name="target_list"),
]
