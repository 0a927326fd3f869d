"""The supervisor of `serve`: a process that keeps dying is started again later each time, and the rest stay up."""

import sys
import time

import pytest

from revsearch_site import processes, supervisor

pytestmark = pytest.mark.processes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def python(name: str, code: str) -> processes.Process:
    process = processes.Process(name, [sys.executable, "-c", code])
    process.echo = True
    return process


def wait_exit(process: processes.Process) -> None:
    process.popen.wait(10)
    time.sleep(0.2)  # the echo thread reads the last words


@pytest.fixture
def home(settings, tmp_path):
    settings.HOME_DIR = tmp_path
    return tmp_path


def test_a_process_that_keeps_dying_backs_off_and_the_others_stay_up(home):
    clock = Clock()
    boss = supervisor.Supervisor(clock=clock)
    crashing = python("watcher", "raise RecursionError('maximum recursion depth exceeded')")
    steady = python("web", "import time; time.sleep(60)")
    boss.start(crashing)
    boss.start(steady)
    waits = []
    try:
        for _ in range(5):
            wait_exit(crashing)
            boss.check()
            state = boss.states["watcher"]
            assert not state.running and state.last_error == "RecursionError: maximum recursion depth exceeded"
            waits.append(state.next_start_at - clock.now)
            clock.now = state.next_start_at
            boss.check()  # its wait is over: started again
            assert boss.states["watcher"].running
        assert waits == [0.0, 2.0, 4.0, 8.0, 16.0]
        assert steady.running() and boss.states["web"].running
        [read] = [state for state in supervisor.read_states() if state.failing(clock.now)]
        assert read.name == "watcher" and "exited 5 times" in read.summary() and "RecursionError" in read.summary()
    finally:
        boss.stop_all()
    assert supervisor.read_states() is None  # serve is gone: nothing stale is reported


def test_the_wait_is_capped_and_old_exits_are_forgotten(home):
    clock = Clock()
    boss = supervisor.Supervisor(clock=clock)
    crashing = python("celery-worker", "import sys; print('Killed'); sys.exit(137)")
    boss.start(crashing)
    try:
        for _ in range(9):
            wait_exit(crashing)
            boss.check()
            clock.now = boss.states["celery-worker"].next_start_at
            boss.check()
        wait_exit(crashing)
        boss.check()
        state = boss.states["celery-worker"]
        assert state.next_start_at - clock.now == supervisor.MAX_BACKOFF_SECONDS
        assert state.last_exit == "code 137" and state.last_error == "Killed"
        clock.now += supervisor.RECENT_SECONDS + 1
        boss.check()  # started again, and the exits of long ago no longer count
        assert state.running and state.exits == [] and not state.failing(clock.now)
    finally:
        boss.stop_all()


def test_a_process_that_cannot_start_is_left_to_the_restart_loop(home):
    boss = supervisor.Supervisor(clock=Clock())
    boss.start(processes.Process("missing", ["/nonexistent/program"]))
    state = boss.states["missing"]
    assert not state.running and "No such file" in state.last_exit and state.next_start_at is not None


def test_health_names_the_failing_process_and_its_last_error(home):
    clock = Clock()
    boss = supervisor.Supervisor(clock=clock)
    crashing = python("watcher", "raise FileExistsError('inbox')")
    boss.start(crashing)
    try:
        wait_exit(crashing)
        boss.check()
        result = supervisor.health()
        assert result["ok"] is False and result["processes"] == {"watcher": "down"}
        assert "watcher down: exited 1 times" in result["error"] and "FileExistsError: inbox" in result["error"]
    finally:
        boss.stop_all()
    assert supervisor.health() == {"ok": True, "supervised": False}
