from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("tasks/", include("media_index.urls")),
    path("people/", include("people.urls")),
    path("", include("search.urls")),
]
