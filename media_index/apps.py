from django.apps import AppConfig


class MediaIndexConfig(AppConfig):
    name = "media_index"
    verbose_name = "Media index"

    def ready(self) -> None:
        from . import signals  # noqa: F401
