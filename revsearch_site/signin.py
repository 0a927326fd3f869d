"""Who is signing in, for django-axes' lockouts: the client's address, also behind the TLS proxy."""

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str | None:
    """The address the connection came from; behind the proxy (REVSEARCH_HTTPS), the one the proxy saw.

    The proxy appends the address it was reached from to X-Forwarded-For, so the last entry is the client's; the
    entries before it are whatever the client sent, and taking one of them would let anyone pick the address their
    failures count against.
    """
    if settings.HTTPS and (forwarded := request.META.get("HTTP_X_FORWARDED_FOR", "")):
        last = forwarded.rsplit(",", 1)[-1].strip()
        if valid_ip(last):
            return last
        logger.warning("X-Forwarded-For ends in %r, not an address: is a proxy in front of the service?", last[:100])
    address = request.META.get("REMOTE_ADDR", "")
    return address if valid_ip(address) else None


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
