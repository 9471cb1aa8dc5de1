from django.urls import path

from forecasting import analysis_views, views

app_name = "forecasting"
urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/funnel/", analysis_views.funnel_page, name="forecast_funnel"),
    path("forecast/calibration/", analysis_views.calibration_page, name="forecast_calibration"),
    path("forecasting/targets/", views.target_list, name="target_list"),
]
