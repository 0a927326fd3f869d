"""Watch the inbox: every new, finished or moved-in file becomes an asset with its indexing queued."""

import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from media_index.watcher import Watcher

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Watch the inbox (REVSEARCH_INBOX) and register every photo or video that arrives."
    # serve has run the system checks; through the URLs they would load torch into a process that never uses it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Catch up on the inbox once and exit.")

    def handle(self, *args, once: bool, **options) -> None:
        watcher = Watcher(settings.INBOX_DIR)

        def stop(signum, _frame) -> None:
            logger.info("watcher got signal %s; stopping", signum)
            watcher.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        watcher.run(once=once)
