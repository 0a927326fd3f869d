from django.apps import AppConfig
from django.core import checks


class MediaIndexConfig(AppConfig):
    name = "media_index"
    verbose_name = "Media index"

    def ready(self) -> None:
        # The tasks register with Celery here, so any process can send them by name (dispatch.INDEX_TASK).
        from . import signals, tasks  # noqa: F401
        from .checks import check_threads_fit_the_cores

        checks.register(check_threads_fit_the_cores)
