from django.urls import path

from forecasting import views

app_name = "forecasting"
urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecasting/targets/", views.target_list, name="target_list"),
]
