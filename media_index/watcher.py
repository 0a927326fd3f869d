"""The inbox watcher: every new, finished or moved-in file becomes an asset with its indexing queued.

`manage.py watch` runs `Watcher.run`. Watchdog's callbacks only record paths (`PathRecorder`); the loop registers
the files whose writers are done, and does the upkeep that needs one process: sending tasks that never reached the
queue, flushing new vectors, deleting old task results. No single path can stop it: each is judged by
`inbox.refusal` first, and any error while registering one is logged and the loop goes on.
"""

import logging
import os
import stat
import threading
import time
import types
from pathlib import Path

import watchdog.events
import watchdog.observers.inotify
from django.conf import settings
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from people import regrouping

from . import dispatch, inbox, intake, monitoring, upkeep

logger = logging.getLogger(__name__)

# How often tasks that never reached the queue (Redis was down) are sent again.
RESEND_SECONDS = 5.0
# How often the watcher looks for new vectors to flush (upkeep.VectorFlusher).
FLUSH_CHECK_SECONDS = 2.0
# How often stored task results older than REVSEARCH_TASK_RESULT_DAYS are deleted.
CLEANUP_SECONDS = 3600.0
# How often the watcher asks whether people should be regrouped (people/regrouping.py).
REGROUP_CHECK_SECONDS = 10.0
# Each refused path is logged once; past this many remembered, the memory starts again.
REMEMBERED_REFUSALS = 100_000
# Catch-up says how far it got every this many files.
PROGRESS_EVERY = 10_000


class _OsWithoutRecursiveWalk(types.ModuleType):
    """The os module as watchdog's inotify emitter sees it, with a walk that does not recurse (see inbox)."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    walk = staticmethod(inbox.walk_folders)


# Watchdog adds its watches with os.walk, which recurses on Python 3.11: a folder 1,200 deep killed the watcher.
watchdog.observers.inotify.os = watchdog.events.os = _OsWithoutRecursiveWalk("os")
_add_callback = watchdog.observers.inotify.InotifyWatchGroup._add_callback


def _add_callback_once(group, path: bytes) -> None:
    """Watch a folder unless this group watches it already.

    Watchdog 7.1 adds the watches of a whole subtree again for each new folder in it, and each time warns with a
    message holding the repr of every watch it has: a tree 500 deep made that quadratic in time and memory, and
    stalled the watcher for minutes.
    """
    if path not in group._active_callbacks_by_path:
        _add_callback(group, path)


# mypy refuses any assignment to a method, which is what patching one is.
watchdog.observers.inotify.InotifyWatchGroup._add_callback = _add_callback_once  # type: ignore[method-assign, assignment]


class OverflowFlag(logging.Filter):
    """Set when watchdog says the kernel dropped events (a burst beyond fs.inotify.max_queued_events)."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = threading.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        if "queue overflowed" in record.getMessage():
            self.raised.set()
        return True


class PathRecorder(FileSystemEventHandler):
    """Records which files changed, when, and how far their writers are; the watcher's loop does the work.

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
        self.long_folders: set[Path] = set()
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            self._note_folder(event)
            return
        if event.event_type in ("opened", "closed_no_write"):
            return
        with self.lock:
            if event.event_type in ("deleted", "moved"):
                self.gone.add(Path(os.fsdecode(event.src_path)))
            if event.event_type == "deleted":
                return
            path = Path(os.fsdecode(event.dest_path if event.event_type == "moved" else event.src_path))
            if inbox.too_long(path.parent):
                # watchdog watches every folder, but nothing in one too long to record is read (inbox.walk): the
                # folder was said once (_note_folder), and its files would be recorded under a stand-in name.
                return
            self.last_event[path] = self.clock()
            if event.event_type in ("closed", "moved"):
                self.complete.add(path)
                self.writing.discard(path)
            elif event.event_type == "modified":
                self.writing.add(path)
                self.complete.discard(path)
            elif event.event_type == "created":
                self.complete.discard(path)

    def _note_folder(self, event: FileSystemEvent) -> None:
        """A folder made or moved in whose path is too long to record (the first such level only): said once."""
        if event.event_type not in ("created", "moved"):
            return
        path = Path(os.fsdecode(event.dest_path if event.event_type == "moved" else event.src_path))
        if inbox.too_long(path) and not inbox.too_long(path.parent):
            with self.lock:
                self.long_folders.add(path)

    def take_long_folders(self) -> set[Path]:
        with self.lock:
            folders, self.long_folders = self.long_folders, set()
        return folders

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


class Watcher:
    """Watches one inbox; `run` returns when `stopping` is set (SIGTERM) or after one pass with once."""

    def __init__(self, folder: Path) -> None:
        self.inbox = folder
        self.stopping = False
        self.recorder = PathRecorder()
        self.refused: set[tuple[str, str]] = set()
        self.empty: list[Path] = []
        self.overflow = OverflowFlag()
        self.flusher = upkeep.VectorFlusher()
        self.regrouper = regrouping.Regrouper()

    def run(self, once: bool = False) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        logging.getLogger("watchdog.observers.inotify_c").addFilter(self.overflow)
        observer = Observer()
        observer.schedule(self.recorder, str(self.inbox), recursive=True)
        observer.start()
        # Start watching before catching up, so nothing that arrives during the catch-up is missed.
        logger.info("watching %s", self.inbox)
        self.catch_up()
        next_resend = next_cleanup = next_flush = next_regroup = 0.0
        try:
            while not once and not self.stopping:
                if self.overflow.raised.is_set():
                    # The kernel dropped events: only a fresh walk can tell what arrived meanwhile.
                    self.overflow.raised.clear()
                    logger.warning("events were lost in a burst of changes; walking the inbox again")
                    self.catch_up()
                if time.monotonic() >= next_resend:
                    # Tasks that could not be sent while Redis was down go out once it is back.
                    self.attempt(dispatch.send_unsent, "send the waiting indexing tasks", RESEND_SECONDS)
                    next_resend = time.monotonic() + RESEND_SECONDS
                if time.monotonic() >= next_flush:
                    self.attempt(self.flusher.check, "flush new vectors in Milvus", FLUSH_CHECK_SECONDS)
                    next_flush = time.monotonic() + FLUSH_CHECK_SECONDS
                if time.monotonic() >= next_regroup:
                    self.attempt(self.regrouper.check, "regroup people", REGROUP_CHECK_SECONDS)
                    next_regroup = time.monotonic() + REGROUP_CHECK_SECONDS
                if time.monotonic() >= next_cleanup:
                    self.attempt(monitoring.delete_old_results, "delete old task results", CLEANUP_SECONDS)
                    next_cleanup = time.monotonic() + CLEANUP_SECONDS
                if not self.register_settled():
                    time.sleep(0.25)
        finally:
            observer.stop()
            observer.join()
            logger.info("watcher stopped")

    def catch_up(self) -> None:
        """Register files that arrived or changed while the watcher was down (those still being written, later)."""
        seen = 0
        with dispatch.photos_together():
            for path in inbox.walk(self.inbox, problem=self.report_folder):
                if self.stopping:
                    return
                self.consider(path)
                seen += 1
                if seen % PROGRESS_EVERY == 0:
                    logger.info("catching up: %d files in %s so far", seen, self.inbox)
        self.record_empty()
        # After registering, so that files moved while the watcher was down have taken their assets along.
        missing = intake.mark_missing(intake.missing_under(self.inbox))
        logger.info("caught up on %d files in %s; %d assets missing", seen, self.inbox, missing)

    def register_settled(self) -> bool:
        """Register the files whose writers are done; says whether there were any."""
        settled = self.recorder.settled(
            settings.INBOX_QUIET_SECONDS, settings.INBOX_STABLE_SECONDS, settings.INBOX_OPEN_SECONDS
        )
        for folder in self.recorder.take_long_folders():
            self.report_folder(folder, inbox.LONG_FOLDER)
        paths = [path for path in settled if inbox.is_candidate(path) and _exists_not_folder(path)]
        with dispatch.photos_together():  # photos that settled together are indexed together
            for path in paths:
                self.consider(path)
        self.record_empty()
        # Moved-in files were registered first, so a rename keeps its asset rather than leaving it missing.
        gone = self.recorder.take_gone()
        if gone:
            self.attempt(lambda: intake.mark_missing(gone), "mark deleted files missing", 0)
        return bool(paths or gone)

    def consider(self, path: Path) -> None:
        """Judge one path, then register it, or wait for its writer; never raises."""
        try:
            refused = inbox.refusal(path)
            if refused:
                self.refuse(refused)
            elif os.stat(path).st_size == 0:
                self.empty.append(path)
                if len(self.empty) >= intake.EMPTY_BATCH:
                    self.record_empty()
            elif inbox.open_for_writing(path):
                # Its writes were not all seen (e.g. it was written into a folder as the folder appeared).
                self.recorder.still_writing(path)
            else:
                intake.register_path(path, within=self.inbox)
        except Exception:
            # One file must not stop the watcher; the next event for it, or a restart, tries again.
            logger.exception("could not register %s; check that it is readable", inbox.path_text(path))

    def record_empty(self) -> None:
        """Record the empty files seen since the last call, in one go."""
        empty, self.empty = self.empty, []
        if empty:
            self.attempt(lambda: intake.record_empty_files(empty), "record empty files", 0)

    def refuse(self, refused: inbox.Refusal) -> None:
        """Log a refused path once; a file among them is recorded as unsupported, so the admin shows why."""
        if (refused.text, refused.reason) in self.refused:
            return
        if len(self.refused) >= REMEMBERED_REFUSALS:
            self.refused.clear()
        self.refused.add((refused.text, refused.reason))
        logger.warning("not read: %s", refused.reason)
        if refused.is_file:
            intake.record_refusal(refused.text, refused.reason)

    def report_folder(self, folder: Path, reason: str) -> None:
        self.refuse(inbox.Refusal(folder, inbox.path_text(folder), f"{inbox.path_text(folder)}: {reason}", False))

    def attempt(self, work, what: str, again_in: float) -> None:
        """Run one piece of upkeep; a failure is logged and tried again later."""
        try:
            work()
        except Exception:
            logger.exception("could not %s; trying again in %s s", what, again_in)


def _exists_not_folder(path: Path) -> bool:
    """A settled path still there and not a folder itself (links and special files go on to be judged)."""
    try:
        return not stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False
