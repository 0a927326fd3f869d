from django.urls import path

from . import views

app_name = "people"

urlpatterns = [
    path("", views.people_list, name="list"),
    path("find", views.find, name="find"),
    path("review/", views.review_next, name="review_next"),
    path("forgotten/<int:forgotten_id>/", views.forgotten, name="forgotten"),
    path("assets/<int:asset_id>/faces", views.add_face, name="add_face"),
    path("<int:person_id>/", views.person_detail, name="person"),
    path("<int:person_id>/rename", views.rename, name="rename"),
    path("<int:person_id>/merge", views.merge, name="merge"),
    path("<int:person_id>/move", views.move, name="move"),
    path("<int:person_id>/cover", views.cover, name="cover"),
    path("<int:person_id>/hide", views.hide, name="hide"),
    path("<int:person_id>/forget", views.forget, name="forget"),
    path("<int:person_id>/review/", views.review_person, name="review"),
]
