"""Run the whole service in the foreground: Redis, Milvus Lite, a Celery worker, the watcher and the web server."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media_index import services
from revsearch_site import processes

logger = logging.getLogger(__name__)

# A process that exits on its own is started again, unless it exits this often: then something is wrong for good.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 300.0


class Command(BaseCommand):
    help = "Start every process of RevSearch and stop them all on Ctrl-C or SIGTERM."

    def handle(self, *args, **options) -> None:
        for folder in (settings.INBOX_DIR, settings.MEDIA_ROOT, settings.QUERY_DIR, settings.LOG_DIR):
            folder.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)

        started: list[processes.Process] = []
        try:
            for process in self.backing_services():
                started.append(process.start(settings.LOG_DIR / f"{process.name}.log"))
                process.wait_ready()
            # Nothing is processing before the worker starts: whatever says so was cut short last time.
            requeued = services.requeue_unfinished()
            if requeued:
                logger.info("queued %d assets again that were not finished last time", requeued)
            for process in (
                processes.celery_worker(settings.WORKER_CONCURRENCY),
                processes.manage("watcher", "watch"),
                processes.web_server(settings.BIND_ADDRESS, settings.PORT),
            ):
                started.append(process.start())
            started[-1].wait_ready()
            self.stdout.write(
                f"RevSearch is up: http://{settings.BIND_ADDRESS}:{settings.PORT}/ (inbox {settings.INBOX_DIR})."
                " Press Ctrl-C to stop."
            )
            restarts: dict[str, list[float]] = {}
            while not self.stopping:
                for process in started:
                    if not process.running() and not self.stopping:
                        self.restart(process, restarts.setdefault(process.name, []))
                time.sleep(0.5)
        finally:
            for process in reversed(started):
                process.stop()
        self.stdout.write("RevSearch stopped.")

    def restart(self, process: processes.Process, times: list[float]) -> None:
        """Start a process that died again, and re-queue what a dead worker was doing."""
        now = time.monotonic()
        times[:] = [at for at in times if now - at < RESTART_WINDOW_SECONDS] + [now]
        code = process.popen.returncode
        if len(times) > RESTART_LIMIT:
            raise CommandError(
                f"{process.name} exited with code {code} {RESTART_LIMIT} times in {RESTART_WINDOW_SECONDS:.0f} s;"
                f" stopping. See {process.log_file or 'the output above'}"
            )
        logger.warning("%s exited with code %s; starting it again", process.name, code)
        process.clear_leftovers()
        process.start()
        process.wait_ready()
        if process.name == "celery-worker" and settings.REDIS_EMBEDDED:
            # Its tasks would come back only after the visibility timeout; this queue has no other worker.
            requeued = services.requeue_unfinished()
            logger.info("queued %d assets again that the worker had not finished", requeued)

    def backing_services(self) -> list[processes.Process]:
        """Redis and Milvus Lite, unless REDIS_URL or MILVUS_URI point at servers run elsewhere."""
        backing = []
        if settings.REDIS_EMBEDDED:
            backing.append(processes.redis(processes.port_of(settings.REDIS_URL), settings.HOME_DIR / "redis"))
        if settings.MILVUS_EMBEDDED:
            backing.append(processes.milvus_lite(processes.port_of(settings.MILVUS_URI), settings.MILVUS_LITE_DIR))
        return backing

    def stop(self, signum, _frame) -> None:
        logger.info("got signal %s; stopping every process", signum)
        self.stopping = True
