"""Review what was indexed: assets with their faces, filters by status and kind, and a re-index action."""

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from . import dispatch, removal
from .models import Asset, Face

if TYPE_CHECKING:  # django-stubs-ext is installed with the development tools only
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class _FaceTotal(TypedDict):
        """What AssetAdmin.get_queryset annotates each asset with."""

        face_total: int


admin.site.site_header = "RevSearch administration"
admin.site.site_title = "RevSearch"
admin.site.index_title = "Archive"
# The index page also leads to the live tasks page (/tasks/).
admin.site.index_template = "media_index/admin_index.html"


def _thumbnail(face: Face | None, size: int = 64) -> str:
    if face is None or not face.crop:
        return "-"
    return format_html('<img src="{}" width="{}" height="{}" alt="face">', face.crop.url, size, size)


class FaceInline(admin.TabularInline):
    model = Face
    extra = 0
    can_delete = False
    fields = ("thumbnail", "probability", "left", "top", "right", "bottom", "model_name")
    readonly_fields = fields

    @admin.display(description="face")
    def thumbnail(self, face: Face) -> str:
        return _thumbnail(face)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = (
        "thumbnail", "display_path", "kind", "status", "progress", "face_count", "file_size", "created_at", "error",
        "warning", "worker_deaths",
    )  # fmt: skip
    list_display_links = ("thumbnail", "display_path")
    list_filter = ("status", "kind", "model_name")
    search_fields = ("path", "sha256")
    readonly_fields = [field.name for field in Asset._meta.fields] + ["open_file", "progress"]
    inlines = [FaceInline]
    actions = ["reindex"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(face_total=Count("faces")).prefetch_related("faces")

    def has_add_permission(self, request) -> bool:
        return False  # assets come from the inbox, or `manage.py ingest`

    @admin.display(description="")
    def thumbnail(self, asset: Asset) -> str:
        faces = list(asset.faces.all())
        return _thumbnail(faces[0] if faces else None, 48)

    @admin.display(description="frames")
    def progress(self, asset: Asset) -> str:
        return asset.progress or "-"

    @admin.display(description="path", ordering="path")
    def display_path(self, asset: Asset) -> str:
        return asset.display_path

    @admin.display(description="size", ordering="size")
    def file_size(self, asset: Asset) -> str:
        return filesizeformat(asset.size)

    @admin.display(description="faces", ordering="face_total")
    def face_count(self, asset: "WithAnnotations[Asset, _FaceTotal]") -> int:
        return asset.face_total

    @admin.display(description="file")
    def open_file(self, asset: Asset) -> str:
        return format_html(
            '<a href="{}" target="_blank">{}</a>', reverse("search:asset_file", args=[asset.pk]), asset.path
        )

    @admin.action(description="Index the selected assets again")
    def reindex(self, request, queryset) -> None:
        count = dispatch.requeue(queryset.exclude(kind=Asset.Kind.OTHER).exclude(status=Asset.Status.DUPLICATE))
        self.message_user(request, f"Queued {count} assets for indexing.", messages.SUCCESS)


@admin.register(Face)
class FaceAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "asset", "person", "probability", "model_name", "created_at")
    list_filter = ("model_name", "asset__kind", "person_pinned")
    search_fields = ("asset__path",)
    list_select_related = ("asset", "person")
    readonly_fields = [field.name for field in Face._meta.fields] + ["thumbnail"]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, face: Face) -> None:
        removal.delete_faces([face])  # its vector and crop too, once the row is gone

    def delete_queryset(self, request, queryset) -> None:
        removal.delete_faces(queryset)

    @admin.display(description="face")
    def thumbnail(self, face: Face) -> str:
        return _thumbnail(face)
