from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "JSON API"

    def ready(self) -> None:
        checks.register(check_api_rate)


def check_api_rate(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A rate that cannot be read stops the service at start, not each API request."""
    from .throttling import parse_rate

    try:
        parse_rate(settings.API_RATE)
    except ValueError as error:
        return [checks.Error(f"REVSEARCH_API_RATE: {error}", id="api.E001")]
    return []
