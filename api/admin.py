"""API tokens in the admin: made for a user (the secret is shown once, on the page after saving), listed, revoked."""

from django.contrib import admin, messages
from django.utils import timezone

from . import tokens
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "read_only", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "read_only", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A token's owner and powers are fixed once made: revoke it and make another.
        return self.readonly_fields + (["user", "read_only"] if obj is not None else [])

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, secret = tokens.issue(obj.user, obj.name, obj.read_only)
        obj.pk, obj.digest, obj.prefix, obj.created_at = token.pk, token.digest, token.prefix, token.created_at
        messages.warning(request, f"The token's secret, shown this once (copy it now, it is not kept): {secret}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        count = sum(tokens.revoke(token) for token in queryset.filter(revoked_at=None))
        messages.success(request, f"{count} token{'s' if count != 1 else ''} revoked at {timezone.now():%H:%M:%S}.")
