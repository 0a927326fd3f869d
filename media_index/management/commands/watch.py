"""Watch the inbox: every new, finished or moved-in file becomes an asset with its indexing queued."""

import errno
import fcntl
import logging
import os
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from media_index import monitoring, services

logger = logging.getLogger(__name__)

# How often tasks that never reached the queue (Redis was down) are sent again.
RESEND_SECONDS = 5.0
# How often the watcher looks for new vectors to flush (services.VectorFlusher).
FLUSH_CHECK_SECONDS = 2.0
# How often stored task results older than REVSEARCH_TASK_RESULT_DAYS are deleted.
CLEANUP_SECONDS = 3600.0


def open_for_writing(path: Path) -> bool:
    """Whether some process holds the file open for writing; False when the system cannot tell.

    The kernel refuses a read lease on a file that anyone has open for writing (fcntl(2), F_SETLEASE); the
    lease is given back at once. Leases need the file's owner (or CAP_LEASE) and a local file system.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        return error.errno == errno.EAGAIN
    else:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(descriptor)


class PathRecorder(FileSystemEventHandler):
    """Records which files changed, when, and how far their writers are; the command's loop does the work.

    A file is ready once nothing touched it for:
    - quiet_seconds after its writer closed it, or after it was renamed into place;
    - stable_seconds when no writer was seen (moved in from another disk, linked, or a network folder);
    - open_seconds when a writer was seen but has not closed it (it may pause and go on writing).
    """

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.last_event: dict[Path, float] = {}
        self.complete: set[Path] = set()
        self.writing: set[Path] = set()
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
                self.writing.discard(path)
            elif event.event_type == "modified":
                self.writing.add(path)
                self.complete.discard(path)
            elif event.event_type == "created":
                self.complete.discard(path)

    def still_writing(self, path: Path) -> None:
        """A file found open for writing: wait for its writer as if a write had just been seen."""
        with self.lock:
            self.last_event[path] = self.clock()
            self.writing.add(path)
            self.complete.discard(path)

    def take_gone(self) -> set[Path]:
        """Paths deleted or moved away, once no file waits to settle: a rename's new name is registered first."""
        with self.lock:
            if self.last_event:
                return set()
            gone, self.gone = self.gone, set()
        return gone

    def settled(self, quiet_seconds: float, stable_seconds: float, open_seconds: float) -> list[Path]:
        """Paths whose writers are done with them."""
        now = self.clock()
        with self.lock:
            ready = []
            for path, seen in self.last_event.items():
                if path in self.complete:
                    wait = quiet_seconds
                else:
                    wait = open_seconds if path in self.writing else stable_seconds
                if now - seen >= wait:
                    ready.append(path)
            for path in ready:
                del self.last_event[path]
                self.complete.discard(path)
                self.writing.discard(path)
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
        self.catch_up(inbox, recorder)
        next_resend = next_cleanup = next_flush = 0.0
        self.flusher = services.VectorFlusher()
        try:
            while not once and not self.stopping:
                if time.monotonic() >= next_resend:
                    # Tasks that could not be sent while Redis was down go out once it is back.
                    self.send_unsent()
                    next_resend = time.monotonic() + RESEND_SECONDS
                if time.monotonic() >= next_flush:
                    self.flush_vectors()
                    next_flush = time.monotonic() + FLUSH_CHECK_SECONDS
                if time.monotonic() >= next_cleanup:
                    self.delete_old_results()
                    next_cleanup = time.monotonic() + CLEANUP_SECONDS
                if not self.register_settled(recorder):
                    time.sleep(0.25)
        finally:
            observer.stop()
            observer.join()
            logger.info("watcher stopped")

    def stop(self, signum, _frame) -> None:
        logger.info("watcher got signal %s; stopping", signum)
        self.stopping = True

    def catch_up(self, inbox: Path, recorder: PathRecorder) -> None:
        """Register files that arrived or changed while the watcher was down (those still being written, later)."""
        seen = 0
        for path in services.walk_files([inbox]):
            if self.stopping:
                return
            if open_for_writing(path):
                recorder.still_writing(path)
            else:
                self.register(path)
            seen += 1
        # After registering, so that files moved while the watcher was down have taken their assets along.
        missing = services.mark_missing(services.missing_under(inbox))
        logger.info("caught up on %d files in %s; %d assets missing", seen, inbox, missing)

    def register_settled(self, recorder: PathRecorder) -> bool:
        """Register the files whose writers are done; says whether there were any."""
        settled = recorder.settled(
            settings.INBOX_QUIET_SECONDS, settings.INBOX_STABLE_SECONDS, settings.INBOX_OPEN_SECONDS
        )
        paths = [path for path in settled if path.is_file() and services.is_candidate(path)]
        for path in paths:
            if open_for_writing(path):
                # Its writes were not all seen (e.g. it was written into a folder as the folder appeared).
                recorder.still_writing(path)
            else:
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

    def flush_vectors(self) -> None:
        try:
            self.flusher.check()
        except Exception:
            logger.exception("could not flush new vectors in Milvus; trying again in %s s", FLUSH_CHECK_SECONDS)

    def delete_old_results(self) -> None:
        try:
            monitoring.delete_old_results()
        except Exception:
            logger.exception("could not delete old task results; trying again in %s s", CLEANUP_SECONDS)

    def register(self, path: Path) -> None:
        try:
            services.register_path(path, within=self.inbox)
        except Exception:
            # One unreadable file must not stop the watcher; the next event for it, or a restart, tries again.
            logger.exception("could not register %s; check that it is readable", path)
