"""The watcher judges each path before reading it: odd ones are recorded once with a reason, and nothing stops it."""

import logging
import os

import pytest

from media_index import intake
from media_index.models import Asset
from media_index.watcher import Watcher

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watcher(tmp_path, sent):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return Watcher(folder)


def test_odd_files_are_recorded_as_unsupported_once_each(watcher, caplog):
    inbox = watcher.inbox
    os.mkfifo(inbox / "pipe.mp4")
    (inbox / "a.jpg").symlink_to(inbox / "b.jpg")
    (inbox / "b.jpg").symlink_to(inbox / "a.jpg")
    (inbox / os.fsdecode(b"bad\xff.jpg")).write_bytes(b"x")
    caplog.set_level(logging.WARNING, "media_index.watcher")
    for _ in range(3):  # a restart's catch-up, and events for the same paths, log nothing new
        watcher.catch_up()
    records = dict(Asset.objects.values_list("path", "error"))
    assert set(records) == {f"{inbox}/pipe.mp4", f"{inbox}/a.jpg", f"{inbox}/b.jpg", f"{inbox}/bad\\xff.jpg"}
    assert set(Asset.objects.values_list("status", flat=True)) == {Asset.Status.UNSUPPORTED}
    assert records[f"{inbox}/pipe.mp4"].endswith("not a regular file (a FIFO)")
    assert records[f"{inbox}/a.jpg"].endswith("a loop of links")
    assert sum("not read:" in message for message in caplog.messages) == 4


def test_an_error_on_one_path_is_logged_and_the_rest_are_registered(watcher, monkeypatch, caplog):
    (watcher.inbox / "first.jpg").write_bytes(b"one")
    (watcher.inbox / "second.jpg").write_bytes(b"two")
    register = intake.register_path

    def breaks_on_first(path, within=None):
        if path.name == "first.jpg":
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return register(path, within)

    monkeypatch.setattr(intake, "register_path", breaks_on_first)
    watcher.catch_up()
    assert list(Asset.objects.values_list("path", flat=True)) == [str(watcher.inbox / "second.jpg")]
    assert any("could not register" in message and "first.jpg" in message for message in caplog.messages)


def test_empty_files_are_recorded_in_batches_without_tasks(watcher, sent):
    for number in range(intake.EMPTY_BATCH * 2 + 7):
        (watcher.inbox / f"{number:05d}.jpg").touch()
    watcher.catch_up()
    assert Asset.objects.filter(status=Asset.Status.FAILED).count() == intake.EMPTY_BATCH * 2 + 7
    assert sent == [] and watcher.empty == []
