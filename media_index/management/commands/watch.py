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


class PathRecorder(FileSystemEventHandler):
    """Records which files changed and when; the command's loop does the work."""

    def __init__(self) -> None:
        self.last_event: dict[Path, float] = {}
        self.gone: set[Path] = set()
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        with self.lock:
            if event.event_type in ("deleted", "moved"):
                self.gone.add(Path(event.src_path))
            if event.event_type != "deleted":
                self.last_event[Path(event.dest_path if event.event_type == "moved" else event.src_path)] = (
                    time.monotonic()
                )

    def take_gone(self) -> set[Path]:
        """Paths deleted or moved away, once no file waits to settle: a rename's new name is registered first."""
        with self.lock:
            if self.last_event:
                return set()
            gone, self.gone = self.gone, set()
        return gone

    def settled(self, quiet_seconds: float) -> list[Path]:
        """Paths with no event for quiet_seconds: their writer is done with them."""
        now = time.monotonic()
        with self.lock:
            ready = [path for path, seen in self.last_event.items() if now - seen >= quiet_seconds]
            for path in ready:
                del self.last_event[path]
        return sorted(ready)


class Command(BaseCommand):
    help = "Watch the inbox (REVSEARCH_INBOX) and register every photo or video that arrives."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Catch up on the inbox once and exit.")
        parser.add_argument(
            "--quiet-seconds",
            type=float,
            default=1.0,
            help="How long a file must be left alone before it is read.",
        )

    def handle(self, *args, once: bool, quiet_seconds: float, **options) -> None:
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
        try:
            while not once and not self.stopping:
                if not self.register_settled(recorder, quiet_seconds):
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

    def register_settled(self, recorder: PathRecorder, quiet_seconds: float) -> bool:
        """Register the files whose writers are done; says whether there were any."""
        paths = [path for path in recorder.settled(quiet_seconds) if path.is_file() and services.is_candidate(path)]
        for path in paths:
            self.register(path)
        # Moved-in files were registered first, so a rename keeps its asset rather than leaving it missing.
        gone = recorder.take_gone()
        if gone:
            services.mark_missing(gone)
        return bool(paths or gone)

    def register(self, path: Path) -> None:
        try:
            services.register_path(path, within=self.inbox)
        except Exception:
            # One unreadable file must not stop the watcher; the next event for it, or a restart, tries again.
            logger.exception("could not register %s; check that it is readable", path)
