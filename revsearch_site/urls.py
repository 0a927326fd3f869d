from django.contrib import admin
from django.urls import include, path

from api import v1

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include((v1.urlpatterns(), "ninja"), namespace="api")),
    path("tasks/", include("media_index.urls")),
    path("people/", include("people.urls")),
    path("", include("search.urls")),
]
