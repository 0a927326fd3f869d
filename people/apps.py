from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "people"
    verbose_name = "People"

    def ready(self) -> None:
        # The regroup task registers with Celery here, so the watcher can send it by name (regrouping.REGROUP_TASK).
        from . import tasks  # noqa: F401
