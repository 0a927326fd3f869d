"""Watch the inbox: every new, finished or moved-in file becomes an asset with its indexing queued."""

import logging
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from media_index import services

logger = logging.getLogger(__name__)

# How often tasks that never reached the queue (Redis was down) are sent again.
RESEND_SECONDS = 5.0


class PathRecorder(FileSystemEventHandler):
    """Records which files changed, when, and whether their writer has closed them; the command's loop works.

    A file is ready once its writer closed it (or it was renamed into place) and nothing touched it for
    quiet_seconds, or, when no close is ever seen (a file moved in from elsewhere, a network folder, a writer
    that keeps it open), once nothing has changed it for stable_seconds.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.last_event: dict[Path, float] = {}
        self.complete: set[Path] = set()
        self.gone: set[Path] = set()
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        with self.lock:
            if event.event_type in ("deleted", "moved"):
                self.gone.add(Path(event.src_path))
            if event.event_type == "deleted":
                return
            path = Path(event.dest_path if event.event_type == "moved" else event.src_path)
            self.last_event[path] = self.clock()
            if event.event_type in ("closed", "moved"):
                self.complete.add(path)
            elif event.event_type in ("created", "modified"):
                self.complete.discard(path)

    def take_gone(self) -> set[Path]:
        """Paths deleted or moved away, once no file waits to settle: a rename's new name is registered first."""
        with self.lock:
            if self.last_event:
                return set()
            gone, self.gone = self.gone, set()
        return gone

    def settled(self, quiet_seconds: float, stable_seconds: float) -> list[Path]:
        """Paths whose writers are done with them."""
        now = self.clock()
        with self.lock:
            ready = [
                path
                for path, seen in self.last_event.items()
                if now - seen >= (quiet_seconds if path in self.complete else stable_seconds)
            ]
            for path in ready:
                del self.last_event[path]
                self.complete.discard(path)
        return sorted(ready)


class Command(BaseCommand):
    help = "Watch the inbox (REVSEARCH_INBOX) and register every photo or video that arrives."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Catch up on the inbox once and exit.")

    def handle(self, *args, once: bool, **options) -> None:
        inbox: Path = settings.INBOX_DIR
        inbox.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

        recorder = PathRecorder()
        observer = Observer()
        observer.schedule(recorder, str(inbox), recursive=True)
        observer.start()
        # Start watching before catching up, so nothing that arrives during the catch-up is missed.
        logger.info("watching %s", inbox)
        self.inbox = inbox
        self.catch_up(inbox)
        next_resend = 0.0
        try:
            while not once and not self.stopping:
                if time.monotonic() >= next_resend:
                    # Tasks that could not be sent while Redis was down go out once it is back.
                    self.send_unsent()
                    next_resend = time.monotonic() + RESEND_SECONDS
                if not self.register_settled(recorder):
                    time.sleep(0.25)
        finally:
            observer.stop()
            observer.join()
            logger.info("watcher stopped")

    def stop(self, signum, _frame) -> None:
        logger.info("watcher got signal %s; stopping", signum)
        self.stopping = True

    def catch_up(self, inbox: Path) -> None:
        """Register files that arrived or changed while the watcher was down."""
        seen = 0
        for path in services.walk_files([inbox]):
            if self.stopping:
                return
            self.register(path)
            seen += 1
        # After registering, so that files moved while the watcher was down have taken their assets along.
        missing = services.mark_missing(services.missing_under(inbox))
        logger.info("caught up on %d files in %s; %d assets missing", seen, inbox, missing)

    def register_settled(self, recorder: PathRecorder) -> bool:
        """Register the files whose writers are done; says whether there were any."""
        settled = recorder.settled(settings.INBOX_QUIET_SECONDS, settings.INBOX_STABLE_SECONDS)
        paths = [path for path in settled if path.is_file() and services.is_candidate(path)]
        for path in paths:
            self.register(path)
        # Moved-in files were registered first, so a rename keeps its asset rather than leaving it missing.
        gone = recorder.take_gone()
        if gone:
            services.mark_missing(gone)
        return bool(paths or gone)

    def send_unsent(self) -> None:
        try:
            services.send_unsent()
        except Exception:
            logger.exception("could not send the waiting indexing tasks; trying again in %s s", RESEND_SECONDS)

    def register(self, path: Path) -> None:
        try:
            services.register_path(path, within=self.inbox)
        except Exception:
            # One unreadable file must not stop the watcher; the next event for it, or a restart, tries again.
            logger.exception("could not register %s; check that it is readable", path)
