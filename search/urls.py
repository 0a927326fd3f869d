from django.urls import path, re_path

from . import views

app_name = "search"

urlpatterns = [
    path("", views.search_form, name="form"),
    re_path(r"^search/(?P<query_id>[0-9a-f]{32})/$", views.search_result, name="result"),
    re_path(r"^search/(?P<query_id>[0-9a-f]{32})/photo$", views.query_photo, name="query_photo"),
    path("assets/<int:asset_id>/file", views.asset_file, name="asset_file"),
    path("assets/<int:asset_id>/", views.asset_detail, name="asset"),
    path("media/<path:path>", views.media_file, name="media"),
]
