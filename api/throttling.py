"""Requests per token, counted in a shared cache (Redis in the service) so that every web process counts together."""

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """A rate such as 120/m as (120, 60): requests allowed, and the window in seconds (s, m, h or d)."""
    count, _, period = rate.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period[:1] not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate: write requests/period, e.g. 120/m (period s, m, h or d)")
    return int(count), PERIODS[period[:1]]


class TokenRateThrottle(BaseThrottle):
    """At most REVSEARCH_API_RATE requests per token in each fixed window. If the cache cannot be reached, the
    request goes through (and the failure is logged): throttling protects the service, it must not stop it."""

    def __init__(self, rate: str | None = None) -> None:
        self.rate = rate  # None: the setting, read at each request
        self.retry_after = 0.0

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if token is None:
            return True
        limit, seconds = parse_rate(self.rate or settings.API_RATE)
        now = time.time()
        window = math.floor(now / seconds)
        key = f"api-rate-{token.pk}-{seconds}-{window}"
        try:
            cache = caches[settings.API_THROTTLE_CACHE]
            cache.add(key, 0, seconds + 1)
            count = cache.incr(key)
        except Exception as error:  # any cache failure (Redis down) lets the request through
            logger.warning("API throttle not applied: its cache failed (%s)", error)
            return True
        self.retry_after = (window + 1) * seconds - now
        return count <= limit

    def wait(self) -> float | None:
        return self.retry_after
