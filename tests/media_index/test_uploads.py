"""Uploads into the inbox, the service alone: names cleaned, nothing overwritten, no link followed, nothing half-written
left behind."""

import errno
import os
from pathlib import Path

import pytest

from media_index import inbox as media_inbox
from media_index import uploads


@pytest.fixture
def inbox(settings, tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    settings.INBOX_DIR = folder
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".upload-*"))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/cron.d/evil.jpg", "evil.jpg"),
        ("C:\\Users\\ada\\Holiday.JPG", "Holiday.JPG"),
        ("..hidden.png", "hidden.png"),
        ("  spaced  .mp4", "spaced.mp4"),
        ("bad\x00na\nme\x7f.jpg", "badname.jpg"),
        # A right-to-left override would show "photo‮gpj.exe" as "photoexe.jpg"; a line separator would split logs.
        ("photo\u202egnp\u2028.webp", "photognp.webp"),
        ("e\u0301te\u0301.jpg", "\u00e9t\u00e9.jpg"),  # decomposed accents, as macOS sends them, composed
    ],
)
def test_names_are_cleaned_to_a_plain_base_name(raw, clean):
    assert uploads.clean_name(raw) == clean


def test_long_names_are_cut_in_characters_and_bytes_keeping_the_suffix():
    assert uploads.clean_name("a" * 500 + ".jpeg") == "a" * 195 + ".jpeg"
    cut = uploads.clean_name("é" * 300 + ".mov")
    assert cut.endswith("é.mov") and len(cut.encode()) <= uploads.MAX_NAME_BYTES


@pytest.mark.parametrize("raw", ["notes.txt", "photo.jpg.part", ".jpg", "", "photo", "x.jpg/", "movie.mp4.exe"])
def test_names_without_a_photo_or_video_suffix_are_refused_naming_the_accepted_ones(raw):
    with pytest.raises(uploads.UploadRefused, match=r"\.jpg .*\.mp4"):
        uploads.clean_name(raw)


@pytest.mark.parametrize(
    ("folder", "parts"),
    [("uploads", ("uploads",)), ("a/./b//", ("a", "b")), ("", ()), (".", ()), ("2024/june", ("2024", "june"))],
)
def test_folders_are_relative_names(folder, parts):
    assert uploads.folder_parts(folder) == parts


@pytest.mark.parametrize("folder", ["/etc", "..", "a/../../b", "a/..", "bad\x00folder", "line\nbreak", "x" * 256])
def test_folders_that_leave_the_inbox_or_hold_control_characters_are_refused(folder):
    with pytest.raises(uploads.UploadRefused):
        uploads.folder_parts(folder)


def test_an_upload_lands_complete_under_its_name_in_a_folder_made_for_it(inbox):
    path = uploads.save_upload([b"first ", b"second"], "photo.jpg", "events/2024")
    assert path == inbox.resolve() / "events" / "2024" / "photo.jpg"
    assert path.read_bytes() == b"first second"
    assert leftovers(inbox) == []


def test_an_existing_file_is_never_replaced(inbox):
    (inbox / "uploads").mkdir()
    (inbox / "uploads" / "photo.jpg").write_bytes(b"original")
    (inbox / "uploads" / "photo (1).jpg").symlink_to(inbox / "elsewhere.jpg")  # a dangling link holds its name too
    second = uploads.save_upload([b"second"], "photo.jpg")
    third = uploads.save_upload([b"third"], "photo.jpg")
    assert (second.name, third.name) == ("photo (2).jpg", "photo (3).jpg")
    assert (inbox / "uploads" / "photo.jpg").read_bytes() == b"original"
    assert not (inbox / "elsewhere.jpg").exists()
    assert third.read_bytes() == b"third"


def test_the_file_is_written_under_a_name_the_watcher_ignores_then_linked_in(inbox, monkeypatch):
    linked = []
    real_link = os.link

    def spy(source, target, **kwargs):
        linked.append((source, target, (inbox / "uploads" / source).read_bytes()))
        real_link(source, target, **kwargs)

    monkeypatch.setattr(os, "link", spy)
    uploads.save_upload([b"whole"], "clip.mp4")
    [(partial, final, content)] = linked
    assert not media_inbox.is_candidate(Path(partial)) and media_inbox.is_candidate(Path(final))
    assert content == b"whole"  # complete before it gets its name
    assert leftovers(inbox) == []


def test_a_failed_write_leaves_no_partial_file(inbox):
    def broken():
        yield b"part of it"
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        uploads.save_upload(broken(), "photo.jpg")
    assert list((inbox / "uploads").iterdir()) == []


def test_a_failed_link_leaves_no_partial_file(inbox, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", broken)
    with pytest.raises(OSError, match="Input/output"):
        uploads.save_upload([b"data"], "photo.jpg")
    assert list((inbox / "uploads").iterdir()) == []


def test_without_hard_links_the_file_is_renamed_in_and_still_replaces_nothing(inbox, monkeypatch):
    def unsupported(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # what a FAT or SMB mount answers

    (inbox / "uploads").mkdir()
    (inbox / "uploads" / "photo.jpg").write_bytes(b"original")
    monkeypatch.setattr(os, "link", unsupported)
    path = uploads.save_upload([b"data"], "photo.jpg")
    assert path.name == "photo (1).jpg" and path.read_bytes() == b"data"
    assert (inbox / "uploads" / "photo.jpg").read_bytes() == b"original" and leftovers(inbox) == []


@pytest.mark.parametrize("folder", ["planted", "planted/deeper", "real/planted"])
def test_a_link_planted_in_the_inbox_is_not_followed(inbox, tmp_path, folder):
    outside = tmp_path / "outside"
    outside.mkdir()
    (inbox / "real").mkdir()
    (inbox / "planted").symlink_to(outside, target_is_directory=True)
    (inbox / "real" / "planted").symlink_to(outside, target_is_directory=True)
    with pytest.raises(uploads.UploadRefused, match="is a link or a file"):
        uploads.save_upload([b"data"], "photo.jpg", folder)
    assert list(outside.iterdir()) == []


def test_a_file_where_a_folder_should_be_is_refused(inbox):
    (inbox / "uploads").write_bytes(b"not a folder")
    with pytest.raises(uploads.UploadRefused):
        uploads.save_upload([b"data"], "photo.jpg")
    assert (inbox / "uploads").read_bytes() == b"not a folder"


def test_a_path_longer_than_the_database_holds_is_refused(inbox):
    with pytest.raises(uploads.UploadRefused, match="longer than"):
        uploads.save_upload([b"data"], "photo.jpg", "/".join(["f" * 200] * 6))
    assert list(inbox.iterdir()) == []
