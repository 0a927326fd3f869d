"""People in the admin: each person with their faces, the forgotten people and the audit log, all read through the
admin; every change to a person goes through people/actions.py, so it is audited like a change made on the pages."""

import json
import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from media_index.models import Face

from . import actions
from .models import ForgottenPerson, PeopleEvent, Person

logger = logging.getLogger(__name__)

# Faces shown on a person's admin page; the link beside them lists all of them.
INLINE_FACES = 100


def _thumbnail(face: Face | None, size: int = 64) -> str:
    if face is None or not face.crop:
        return "-"
    return format_html('<img src="{}" width="{}" height="{}" alt="face">', face.crop.url, size, size)


class _FirstFaces(BaseInlineFormSet):
    """The person's first faces only: a person of thousands of faces would make the page too heavy."""

    def get_queryset(self):
        if not hasattr(self, "_first_faces"):
            faces = super().get_queryset()
            self._first_faces = faces.filter(pk__in=list(faces.values_list("pk", flat=True)[:INLINE_FACES]))
        return self._first_faces


class PersonFaceInline(admin.TabularInline):
    model = Face
    formset = _FirstFaces
    extra = 0
    can_delete = False
    fields = ("thumbnail", "asset", "probability", "person_pinned", "person_distance", "track", "added_by_hand")
    readonly_fields = fields
    ordering = ("-probability", "pk")
    verbose_name_plural = f"faces (the {INLINE_FACES} clearest)"

    @admin.display(description="face")
    def thumbnail(self, face: Face) -> str:
        return _thumbnail(face)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("cover_thumbnail", "__str__", "face_total", "hidden", "updated_at")
    list_display_links = ("cover_thumbnail", "__str__")
    list_filter = ("hidden",)
    search_fields = ("name",)
    fields = ("name", "hidden", "cover_thumbnail", "all_faces", "created_at", "updated_at")
    readonly_fields = ("cover_thumbnail", "all_faces", "created_at", "updated_at")
    inlines = [PersonFaceInline]
    actions = ["hide", "show", "merge_selected", "forget_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(faces_total=Count("faces")).select_related("cover")

    def has_add_permission(self, request) -> bool:
        return False  # people are formed by clustering

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting would leave their faces unaudited: merge them, or forget them

    def save_model(self, request, obj: Person, form, change: bool) -> None:
        """Name and hiding go through people/actions.py, one audited event each."""
        if "name" in form.changed_data:
            actions.rename(obj, form.cleaned_data["name"], user=request.user)
        if "hidden" in form.changed_data:
            actions.set_hidden(obj, form.cleaned_data["hidden"], user=request.user)

    @admin.display(description="cover")
    def cover_thumbnail(self, person: Person) -> str:
        face = person.cover or person.faces.order_by("-probability", "pk").first()
        return _thumbnail(face, 48)

    @admin.display(description="faces", ordering="faces_total")
    def face_total(self, person: Person) -> int:
        return getattr(person, "faces_total", 0)

    @admin.display(description="all faces")
    def all_faces(self, person: Person) -> str:
        url = reverse("admin:media_index_face_changelist") + f"?person__id__exact={person.pk}"
        return format_html('<a href="{}">{} faces</a>', url, person.faces.count())

    @admin.action(description="Hide the selected people")
    def hide(self, request, queryset) -> None:
        for person in queryset:
            actions.set_hidden(person, True, user=request.user)
        self.message_user(request, f"Hid {len(queryset)} people.", messages.SUCCESS)

    @admin.action(description="Show the selected people again")
    def show(self, request, queryset) -> None:
        for person in queryset:
            actions.set_hidden(person, False, user=request.user)
        self.message_user(request, f"Showed {len(queryset)} people again.", messages.SUCCESS)

    @admin.action(description="Merge the selected people into one")
    def merge_selected(self, request, queryset) -> None:
        """Into the named one (the one with most faces among several named), so no name is lost silently."""
        people = sorted(queryset, key=lambda person: (not person.name, -getattr(person, "faces_total", 0), person.pk))
        names = {person.name for person in people if person.name}
        if len(people) < 2 or len(names) > 1:
            self.message_user(
                request, "Select two or more people, at most one of them named: rename first to merge named people.",
                messages.ERROR,
            )  # fmt: skip
            return
        target = people[0]
        for source in people[1:]:
            actions.merge(source, target, user=request.user)
        self.message_user(request, f"Merged {len(people) - 1} people into {target.label}.", messages.SUCCESS)

    @admin.action(description="Forget the selected people (delete their faces; files stay)")
    def forget_selected(self, request, queryset):
        """Asks first, on a page of its own; then erases each and links the erasure reports."""
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Forget these people?",
                "people": list(queryset),
                "opts": self.model._meta,
                "action": "forget_selected",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/people/person/forget_confirmation.html", context)
        for person in queryset:
            forgotten = actions.forget(person, user=request.user)
            self.message_user(
                request, f"Forgot {forgotten.label}: {forgotten.faces_deleted} faces deleted.", messages.SUCCESS
            )
        return None


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ForgottenPerson)
class ForgottenPersonAdmin(_ReadOnly):
    list_display = ("label", "faces_deleted", "faces_dropped", "forgotten_by", "created_at")
    search_fields = ("label",)
    fields = ("label", "faces_deleted", "faces_dropped", "forgotten_by", "created_at", "model_name", "template_size",
              "erasure_report")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="template")
    def template_size(self, forgotten: ForgottenPerson) -> str:
        rows = len(bytes(forgotten.template)) // (4 * forgotten.dimension) if forgotten.dimension else 0
        return f"{rows} faces of {forgotten.dimension} numbers"

    @admin.display(description="erasure report")
    def erasure_report(self, forgotten: ForgottenPerson) -> str:
        return format_html("<pre>{}</pre>", json.dumps(forgotten.report, indent=2, ensure_ascii=False))


@admin.register(PeopleEvent)
class PeopleEventAdmin(_ReadOnly):
    list_display = ("created_at", "action", "person_label", "person", "user")
    list_filter = ("action",)
    search_fields = ("person_label",)
    list_select_related = ("person", "user")
    fields = ("created_at", "action", "person_label", "person", "user", "details")
    readonly_fields = fields
    date_hierarchy = "created_at"

    @admin.display(description="detail")
    def details(self, event: PeopleEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.detail, indent=2, ensure_ascii=False))
