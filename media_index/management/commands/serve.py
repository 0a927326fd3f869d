"""Run the whole service in the foreground: Redis, Milvus Lite, a Celery worker, the watcher and the web server."""

import logging
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media_index import dispatch
from revsearch_site import processes
from revsearch_site.supervisor import Supervisor

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Start every process of RevSearch, keep them running, and stop them all on Ctrl-C or SIGTERM."
    # The system checks load the URLs and, through the search views, torch: this process lives as long as the
    # service and needs neither, so they run in a child process instead (check_in_child).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options) -> None:
        self.check_in_child()
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

    def check_in_child(self) -> None:
        """Django's system checks, as `manage.py check` runs them: an error stops the start before any process has
        started; warnings are shown and the start goes on."""
        done = subprocess.run(
            [sys.executable, str(processes.BASE_DIR / "manage.py"), "check"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            found = (done.stderr or done.stdout).strip()
            raise CommandError(f"the system checks failed, nothing was started:\n{found}")
        if done.stderr.strip():
            self.stderr.write(done.stderr.strip())

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
