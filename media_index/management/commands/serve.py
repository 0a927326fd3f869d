"""Run the whole service in the foreground: Redis, Milvus Lite, a Celery worker, the watcher and the web server."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from media_index import dispatch
from revsearch_site import processes
from revsearch_site.supervisor import Supervisor

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Start every process of RevSearch, keep them running, and stop them all on Ctrl-C or SIGTERM."

    def handle(self, *args, **options) -> None:
        for folder in (settings.INBOX_DIR, settings.MEDIA_ROOT, settings.QUERY_DIR, settings.LOG_DIR):
            folder.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)

        supervisor = Supervisor()
        try:
            for process in self.backing_services():
                supervisor.start(process, settings.LOG_DIR / f"{process.name}.log", wait=True)
            # Nothing is processing before the worker starts: whatever says so was cut short last time.
            requeued = dispatch.requeue_unfinished()
            if requeued:
                logger.info("queued %d assets again that were not finished last time", requeued)
            for process in (
                processes.celery_worker(settings.WORKER_CONCURRENCY),
                processes.manage("watcher", "watch"),
                processes.web_server(settings.BIND_ADDRESS, settings.PORT),
            ):
                process.echo = True
                supervisor.start(process, wait=process.ready_port is not None)
            if settings.REDIS_EMBEDDED:
                # A dead worker's tasks would come back only after the visibility timeout; this queue has no other.
                supervisor.on_restart["celery-worker"] = self.requeue_after_worker_death
            self.stdout.write(
                f"RevSearch is up: http://{settings.BIND_ADDRESS}:{settings.PORT}/ (inbox {settings.INBOX_DIR})."
                " Press Ctrl-C to stop."
            )
            while not self.stopping:
                supervisor.check()
                time.sleep(0.5)
        finally:
            supervisor.stop_all()
        self.stdout.write("RevSearch stopped.")

    def requeue_after_worker_death(self) -> None:
        requeued = dispatch.requeue_unfinished()
        logger.info("queued %d assets again that the worker had not finished", requeued)

    def backing_services(self) -> list[processes.Process]:
        """Redis and Milvus Lite, unless REDIS_URL or MILVUS_URI point at servers run elsewhere."""
        backing = []
        if settings.REDIS_EMBEDDED:
            redis_port = processes.port_of(settings.REDIS_URL)
            backing.append(processes.redis(redis_port, settings.HOME_DIR / "redis", settings.REDIS_PASSWORD))
        if settings.MILVUS_EMBEDDED:
            backing.append(processes.milvus_lite(processes.port_of(settings.MILVUS_URI), settings.MILVUS_LITE_DIR))
        return backing

    def stop(self, signum, _frame) -> None:
        logger.info("got signal %s; stopping every process", signum)
        self.stopping = True
