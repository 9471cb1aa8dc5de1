from django.urls import path

from pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("board/", views.board, name="board"),
    path("board/columns/<str:stage>/", views.board_column, name="board_column"),
    path("opportunities/new/", views.opportunity_create, name="opportunity_create"),
    path("opportunities/<int:pk>/", views.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/edit/", views.opportunity_edit, name="opportunity_edit"),
    path("opportunities/<int:pk>/move/", views.opportunity_move, name="opportunity_move"),
    path("opportunities/<int:pk>/extend/", views.opportunity_extend, name="opportunity_extend"),
    path("opportunities/<int:pk>/tick/", views.criterion_tick, name="criterion_tick"),
    path("opportunities/<int:pk>/untick/", views.criterion_untick, name="criterion_untick"),
    path("opportunities/<int:pk>/champion/", views.champion_name, name="champion_name"),
    path("opportunities/<int:pk>/committee/add/", views.committee_member_add,
         name="committee_member_add"),
    path("opportunities/<int:pk>/committee/remove/", views.committee_member_remove,
         name="committee_member_remove"),
    path("opportunities/<int:pk>/committee/confirm/", views.committee_member_confirm,
         name="committee_member_confirm"),
]
