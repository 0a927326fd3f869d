"""The warning against more torch threads than cores."""

import os

from media_index.checks import check_threads_fit_the_cores


def test_more_threads_than_cores_is_warned_about(settings):
    cores = os.cpu_count() or 1
    settings.WORKER_CONCURRENCY, settings.TORCH_THREADS = cores, 1
    assert check_threads_fit_the_cores() == []
    settings.TORCH_THREADS = 2
    [warning] = check_threads_fit_the_cores()
    assert warning.id == "media_index.W001"
    assert f"{cores * 2} torch threads on {cores} cores" in warning.msg
