from django.urls import path

from forecasting.api import api

urlpatterns = [path("api/", api.urls)]
