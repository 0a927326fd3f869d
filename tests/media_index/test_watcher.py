"""When the watcher reads a file: after its writer closed it, or after it stopped changing (fake events, fake clock)."""

from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
)

from media_index.inbox import open_for_writing
from media_index.watcher import PathRecorder

QUIET, STABLE, OPEN = 1.0, 5.0, 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorder_at(clock: Clock, *timed_events: tuple[float, FileSystemEvent]) -> PathRecorder:
    recorder = PathRecorder(clock=clock)
    for at, event in timed_events:
        clock.now = at
        recorder.on_any_event(event)
    return recorder


def test_a_closed_file_is_read_after_the_quiet_time():
    clock = Clock()
    recorder = recorder_at(
        clock,
        (0.0, FileCreatedEvent("/in/a.jpg")),
        (0.1, FileModifiedEvent("/in/a.jpg")),
        (0.2, FileClosedEvent("/in/a.jpg")),
    )
    clock.now = 0.2 + QUIET - 0.01
    assert recorder.settled(QUIET, STABLE, OPEN) == []
    clock.now = 0.2 + QUIET
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/a.jpg")]
    assert recorder.settled(QUIET, STABLE, OPEN) == [], "each file is handed over once"


def test_a_file_still_open_for_writing_waits_for_its_close_or_a_long_silence():
    clock = Clock()
    # A slow copy: it wrote, paused longer than the quiet and stable times, and has not closed the file.
    recorder = recorder_at(
        clock,
        (0.0, FileCreatedEvent("/in/big.mp4")),
        (0.5, FileModifiedEvent("/in/big.mp4")),
        (3.0, FileModifiedEvent("/in/big.mp4")),
    )
    clock.now = 3.0 + STABLE + 1
    assert recorder.settled(QUIET, STABLE, OPEN) == [], "read during the pause"
    clock.now = 3.0 + OPEN - 0.01
    assert recorder.settled(QUIET, STABLE, OPEN) == []
    clock.now = 3.0 + OPEN
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/big.mp4")], "a writer that died unseen"


def test_a_file_that_appeared_without_a_writer_is_read_once_stable():
    clock = Clock()
    recorder = recorder_at(clock, (0.0, FileCreatedEvent("/in/moved-from-another-disk.jpg")))
    clock.now = STABLE - 0.01
    assert recorder.settled(QUIET, STABLE, OPEN) == []
    clock.now = STABLE
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/moved-from-another-disk.jpg")]


def test_a_write_after_the_close_waits_for_the_next_close():
    clock = Clock()
    recorder = recorder_at(clock, (0.0, FileClosedEvent("/in/a.jpg")), (0.5, FileModifiedEvent("/in/a.jpg")))
    clock.now = 0.5 + QUIET
    assert recorder.settled(QUIET, STABLE, OPEN) == []
    clock.now = 2.0
    recorder.on_any_event(FileClosedEvent("/in/a.jpg"))
    clock.now = 2.0 + QUIET
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/a.jpg")]


def test_a_rename_into_place_is_complete_and_its_old_name_gone():
    clock = Clock()
    recorder = recorder_at(
        clock,
        (0.0, FileCreatedEvent("/in/a.jpg.part")),
        (0.1, FileClosedEvent("/in/a.jpg.part")),
        (0.2, FileMovedEvent("/in/a.jpg.part", "/in/a.jpg")),
    )
    assert recorder.take_gone() == set(), "the new name is registered before the old one is given up"
    clock.now = 0.2 + QUIET
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/a.jpg"), Path("/in/a.jpg.part")]
    assert recorder.take_gone() == {Path("/in/a.jpg.part")}


def test_nothing_in_a_folder_too_long_to_record_is_read():
    clock = Clock()
    folder = "/in/" + "/".join(name * 250 for name in "12345")  # its fifth part takes it past 1,024 characters
    recorder = recorder_at(
        clock,
        (0.0, DirCreatedEvent(folder)),
        (0.1, FileCreatedEvent(f"{folder}/long.jpg")),
        (0.2, FileClosedEvent(f"{folder}/long.jpg")),
        (0.2, FileClosedEvent("/in/short.jpg")),
    )
    clock.now = 100.0
    assert recorder.settled(QUIET, STABLE, OPEN) == [Path("/in/short.jpg")]
    assert recorder.take_long_folders() == {Path(folder)}  # said once, by the watcher


def test_a_deleted_file_is_only_gone():
    clock = Clock()
    recorder = recorder_at(clock, (0.0, FileDeletedEvent("/in/a.jpg")))
    clock.now = 100.0
    assert recorder.settled(QUIET, STABLE, OPEN) == []
    assert recorder.take_gone() == {Path("/in/a.jpg")}


def test_a_file_open_for_writing_is_told_apart_from_one_open_for_reading(tmp_path):
    path = tmp_path / "copying.jpg"
    with path.open("wb") as writer:
        writer.write(b"half a photo")
        assert open_for_writing(path)
    assert not open_for_writing(path)
    with path.open("rb"):
        assert not open_for_writing(path)
    assert not open_for_writing(tmp_path / "gone.jpg")
