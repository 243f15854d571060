from django.urls import path

from siyu.guidetasks import views

app_name = "guidetasks"

urlpatterns = [
    path("", views.rule_list, name="rules"),
    path("<id:pk>/", views.rule_detail, name="rule"),
    path("<id:pk>/run", views.rule_run, name="rule-run"),
    path("<id:pk>/delete", views.rule_delete, name="rule-delete"),
    path("board/", views.board, name="board"),
]
