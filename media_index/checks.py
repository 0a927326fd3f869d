"""System checks for the indexing workers."""

import os

from django.conf import settings
from django.core import checks


def check_threads_fit_the_cores(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """More torch threads than cores make them wait on each other: 2 workers with 2 threads each indexed 1.5
    photos/s on 2 cores where 2 workers with 1 thread indexed 22.8 (`manage.py benchmark`)."""
    cores = os.cpu_count() or 1
    threads = settings.WORKER_CONCURRENCY * settings.TORCH_THREADS
    if threads <= cores:
        return []
    return [
        checks.Warning(
            f"REVSEARCH_WORKERS={settings.WORKER_CONCURRENCY} x REVSEARCH_TORCH_THREADS={settings.TORCH_THREADS}"
            f" = {threads} torch threads on {cores} cores: indexing will be many times slower.",
            hint="Keep workers x threads at most the number of cores; one thread per worker is fastest for photos.",
            id="media_index.W001",
        )
    ]
