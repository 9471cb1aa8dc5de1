from django.urls import path

from pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("opportunities/", views.opportunity_list, name="opportunity_list"),
]
