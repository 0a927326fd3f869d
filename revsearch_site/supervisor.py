"""Keeps the processes of `manage.py serve` running: a process that dies is started again, later each time.

No process's failure stops the others: a watcher that dies at every start (one odd folder once did that) must
not take the web pages down with it. What each process is doing is kept in a small JSON file in the home, which
/healthz and the tasks page read, so the failing process and its last error are shown where people look.
"""

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

from revsearch_site import processes

logger = logging.getLogger(__name__)

# Exits counted for the back-off and for "keeps dying" are those of the last RECENT_SECONDS.
RECENT_SECONDS = 300.0
# The wait before a start after the n-th recent exit: 0 s, then 2, 4, 8 ... up to MAX_BACKOFF_SECONDS.
MAX_BACKOFF_SECONDS = 60.0
# A process that exited this many times recently is failing, even while it is up between two exits, until it has
# stayed up for STABLE_SECONDS.
FAILING_EXITS = 3
STABLE_SECONDS = 60.0
STATE_FILE_NAME = "processes.json"


@dataclass
class ProcessState:
    """What the supervisor knows of one process; times are Unix seconds."""

    name: str
    running: bool = False
    pid: int | None = None
    started_at: float | None = None
    exits: list[float] = field(default_factory=list)
    last_exit: str = ""
    last_error: str = ""
    next_start_at: float | None = None

    def failing(self, now: float | None = None) -> bool:
        """Down, or up again for a short while after exiting again and again."""
        if not self.running:
            return True
        up_for = (now or time.time()) - (self.started_at or 0)
        return len(self.exits) >= FAILING_EXITS and up_for < STABLE_SECONDS

    def summary(self) -> str:
        """One line for a health check or the log: why the process is failing."""
        where = "down" if not self.running else "up again"
        text = f"{self.name} {where}: exited {len(self.exits)} times in {RECENT_SECONDS / 60:.0f} min"
        text += f" (last: {self.last_exit})" if self.last_exit else ""
        return text + (f"; last error: {self.last_error}" if self.last_error else "")


def state_file() -> Path:
    return settings.HOME_DIR / STATE_FILE_NAME


def read_states() -> list[ProcessState] | None:
    """The processes as serve last wrote them, or None when no serve runs in this home (e.g. under compose)."""
    try:
        data = json.loads(state_file().read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(data.get("supervisor_pid")):
        return None
    return [ProcessState(**state) for state in data["processes"]]


def health() -> dict:
    """For /healthz: not ok while a process of serve is down or keeps dying, with why (ok when no serve runs here)."""
    states = read_states()
    if states is None:
        return {"ok": True, "supervised": False}
    failing = [state.summary() for state in states if state.failing()]
    result = {"ok": not failing, "processes": {state.name: "up" if state.running else "down" for state in states}}
    return result | ({"error": "; ".join(failing)} if failing else {})


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    """Starts processes, restarts those that exit with a growing wait, and writes their states for the pages."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.processes: list[processes.Process] = []
        self.states: dict[str, ProcessState] = {}
        self.on_restart: dict[str, Callable[[], None]] = {}

    def start(self, process: processes.Process, log_file: Path | None = None, wait: bool = False) -> None:
        """Start a process for the first time; one that fails to start is left to the restart loop."""
        self.processes.append(process)
        self.states[process.name] = ProcessState(process.name)
        self._launch(process, log_file, wait)

    def _launch(self, process: processes.Process, log_file: Path | None = None, wait: bool = True) -> None:
        state = self.states[process.name]
        state.next_start_at = None
        try:
            process.start(log_file)
            assert process.popen is not None  # start() sets it
            state.running, state.pid, state.started_at = True, process.popen.pid, self.clock()
            if wait:
                process.wait_ready()
        except (OSError, RuntimeError) as error:
            logger.error("%s did not start: %s", process.name, error)
            self._exited(process, str(error))
        self.write()

    def check(self) -> None:
        """Notice processes that exited, and start again those whose wait is over."""
        now = self.clock()
        changed = False
        for process in self.processes:
            state = self.states[process.name]
            state.exits = [at for at in state.exits if now - at < RECENT_SECONDS]
            if state.running and not process.running():
                assert process.popen is not None  # it was running
                self._exited(process, f"code {process.popen.returncode}")
                changed = True
            elif not state.running and state.next_start_at is not None and now >= state.next_start_at:
                logger.info("starting %s again", process.name)
                process.clear_leftovers()
                self._launch(process)
                if state.running and process.name in self.on_restart:
                    self.on_restart[process.name]()
                changed = True
        if changed:
            self.write()

    def _exited(self, process: processes.Process, how: str) -> None:
        state = self.states[process.name]
        now = self.clock()
        state.running, state.pid = False, None
        state.exits.append(now)
        state.last_exit = how
        state.last_error = process.last_error()
        wait = 0.0 if len(state.exits) == 1 else min(2.0 ** (len(state.exits) - 1), MAX_BACKOFF_SECONDS)
        state.next_start_at = now + wait
        logger.warning(
            "%s exited with %s (%d times in %.0f s); starting it again in %.0f s. Last error: %s",
            process.name, how, len(state.exits), RECENT_SECONDS, wait, state.last_error or "(none)",
        )  # fmt: skip

    def write(self) -> None:
        """Replace the state file in one step, so a reader never sees half of it."""
        data = {
            "supervisor_pid": os.getpid(),
            "written_at": self.clock(),
            "processes": [asdict(state) for state in self.states.values()],
        }
        target = state_file()
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, target)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        state_file().unlink(missing_ok=True)
