"""The inbox walk and the checks on each path: odd paths are refused with a reason, never raised."""

import os
import sys

import pytest

from media_index import inbox
from tests.conftest import nest, unnest


@pytest.fixture
def deep(tmp_path):
    """Makes nested folders; removes them after (shutil.rmtree recurses, and their paths get too long)."""
    yield lambda depth: nest(tmp_path / "d", depth - 1, "deep.jpg")
    unnest(tmp_path / "d")


def test_a_folder_nested_deeper_than_the_recursion_limit_is_walked(tmp_path, deep):
    deep(400)  # 800 characters: deep, and still short enough to record
    (tmp_path / "top.jpg").write_bytes(b"x")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # a walk that recursed (os.walk, Path.rglob on Python 3.11) would fail here
    try:
        found = list(inbox.walk(tmp_path, problem=lambda path, reason: pytest.fail(reason)))
    finally:
        sys.setrecursionlimit(limit)
    assert found[0] == tmp_path / "top.jpg" and found[1].name == "deep.jpg" and len(found) == 2


def test_folders_too_deep_to_record_are_reported_once_and_the_walk_goes_on(tmp_path, deep):
    deep(2100)  # 4,200 characters below tmp_path: past the database's 1,024 and the system's PATH_MAX
    (tmp_path / "top.jpg").write_bytes(b"x")
    problems = []
    found = list(inbox.walk(tmp_path, problem=lambda path, reason: problems.append((path, reason))))
    assert found == [tmp_path / "top.jpg"]
    [(folder, reason)] = problems
    assert len(str(folder)) > inbox.PATH_MAX_CHARS >= len(str(folder.parent))
    assert reason == "the path is longer than 1024 characters; nothing in it is read"


def test_watchdog_walk_does_not_recurse_nor_list_folders_too_long_to_record(tmp_path, deep):
    deep(1500)
    folders = [root for root, _, _ in inbox.walk_folders(os.fsencode(tmp_path))]
    assert folders[0] == os.fsencode(tmp_path) and len(folders) > 400
    assert max(len(folder) for folder in folders) <= inbox.PATH_MAX_CHARS


def test_links_to_folders_are_not_followed_so_loops_end(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "photo.jpg").write_bytes(b"x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    assert list(inbox.walk(tmp_path)) == [tmp_path / "a" / "loop", tmp_path / "a" / "photo.jpg"]
    assert inbox.refusal(tmp_path / "a" / "loop").reason.endswith("a link to a folder is not followed")


def test_hidden_and_partial_files_are_left_for_later(tmp_path):
    for name in (".hidden.jpg", "download.jpg.part", "seen.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert list(inbox.walk(tmp_path)) == [tmp_path / "seen.jpg"]


def test_an_unreadable_folder_is_reported_and_skipped(tmp_path, monkeypatch):
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "inside.jpg").write_bytes(b"x")
    (tmp_path / "open.jpg").write_bytes(b"x")
    scandir = os.scandir

    def refusing(path):  # root reads every folder whatever its mode: refuse this one as the kernel would
        if str(path).endswith("closed"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(inbox.os, "scandir", refusing)
    problems = []
    assert list(inbox.walk(tmp_path, problem=lambda p, r: problems.append((p, r)))) == [tmp_path / "open.jpg"]
    assert problems == [(tmp_path / "closed", "folder not read (Permission denied); check its permissions")]


def test_a_regular_file_is_not_refused(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "photo.jpg")
    assert inbox.refusal(tmp_path / "photo.jpg") is None and inbox.refusal(tmp_path / "link.jpg") is None


@pytest.mark.parametrize(
    "make, reason, is_file",
    [
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO)", True),
        (
            lambda p: (p.symlink_to(p.with_name("other.jpg")), p.with_name("other.jpg").symlink_to(p)),
            "a loop of links",
            True,
        ),
        (lambda p: p.symlink_to(p.with_name("nowhere.jpg")), "a link to nothing", False),
    ],
    ids=["fifo", "loop", "dangling"],
)
def test_odd_files_are_refused_with_a_reason(tmp_path, make, reason, is_file):
    path = tmp_path / "odd.jpg"
    make(path)
    refused = inbox.refusal(path)
    assert refused.reason == f"{path}: {reason}" and refused.is_file is is_file


def test_a_name_that_is_not_utf8_is_recorded_under_a_readable_stand_in(tmp_path):
    path = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    path.write_bytes(b"x")
    refused = inbox.refusal(path)
    assert refused.text == f"{tmp_path}/caf\\xe9.jpg" and "not valid UTF-8" in refused.reason
    refused.text.encode("utf-8")  # the database can hold it


def test_a_path_longer_than_the_database_holds_gets_a_short_unique_stand_in(tmp_path):
    folder = tmp_path / ("x" * 200) / ("y" * 200) / ("z" * 200) / ("w" * 200) / ("v" * 200)
    folder.mkdir(parents=True)
    first, second = folder / "a.jpg", folder / "b.jpg"
    for path in (first, second):
        path.write_bytes(b"x")
    refused = [inbox.refusal(path) for path in (first, second)]
    assert all(len(r.text) <= inbox.PATH_MAX_CHARS and "longer than 1024" in r.reason for r in refused)
    assert refused[0].text != refused[1].text and refused[0].text.endswith("/a.jpg")
