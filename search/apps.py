from django.apps import AppConfig
from django.core import checks


class SearchConfig(AppConfig):
    name = "search"

    def ready(self) -> None:
        from .checks import check_uploads_outside_inbox

        checks.register(check_uploads_outside_inbox, checks.Tags.files)
