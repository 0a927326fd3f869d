"""Making, checking and revoking API tokens (the admin, `manage.py api_token` and the API's auth use these)."""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import ApiToken

logger = logging.getLogger(__name__)

# Every token starts with this, so a leaked one is easy to recognise (and to search for in logs and repositories).
PREFIX = "rvs_"
# A token's last use is written at most this often: a busy script must not write the database on every request.
LAST_USED_EVERY = timedelta(minutes=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def issue(user, name: str = "", read_only: bool = False) -> tuple[ApiToken, str]:
    """A new token for the user, and its secret: shown this once, never stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], digest=digest(secret), prefix=secret[:12], read_only=read_only
    )
    logger.info("API token %s made for %s%s", token.prefix, user, " (read-only)" if read_only else "")
    return token, secret


def find(secret: str) -> ApiToken | None:
    """The active token with this secret, whose user is active; None otherwise."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(secret), revoked_at=None).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def revoke(token: ApiToken) -> bool:
    """Refuse the token from now on; False if it was revoked already."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
    if changed:
        logger.info("API token %s of %s revoked", token.prefix, token.user)
    return bool(changed)


def user_named(username: str):
    """The user with this username, or None."""
    users = get_user_model()
    return users.objects.filter(**{users.USERNAME_FIELD: username}).first()
