"""Run the whole service in the foreground: Redis, Milvus Lite, a Celery worker, the watcher and the web server."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media_index import services
from revsearch_site import processes

logger = logging.getLogger(__name__)


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
            while not self.stopping:
                for process in started:
                    if not process.running():
                        raise CommandError(f"{process.name} exited with code {process.popen.returncode}; stopping")
                time.sleep(0.5)
        finally:
            for process in reversed(started):
                process.stop()
        self.stdout.write("RevSearch stopped.")

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
