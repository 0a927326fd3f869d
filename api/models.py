"""API tokens: each belongs to a user, is stored only as a digest, and may be read-only or revoked."""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token for /api/v1/. The secret is shown once, when made; only its SHA-256 is kept (a random
    256-bit secret needs no slow hash: nothing can be guessed from the digest)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for: a script, a service.")
    digest = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the secret, in hex.")
    prefix = models.CharField(
        max_length=12, editable=False, help_text="The secret's first characters, to tell tokens apart."
    )
    read_only = models.BooleanField(default=False, help_text="May search and read, never change anything.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when revoked: it is refused from then on.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'}, {self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
