from django.urls import path

from forecasting import views

app_name = "forecasting"
urlpatterns = [
    path("targets/", views.target_list, name="target_list"),
]
