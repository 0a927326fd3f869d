from django.urls import path

from . import views

app_name = "tasks"

urlpatterns = [
    path("", views.tasks, name="page"),
    path("status.json", views.tasks_status, name="status"),
    path("retry", views.retry, name="retry"),
]
