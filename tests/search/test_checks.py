"""The system check that keeps query photos and face crops out of the watched inbox."""

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError


@pytest.fixture
def home(settings, tmp_path):
    """The default layout: inbox, queries and media side by side in the home."""
    home = tmp_path.resolve()
    settings.INBOX_DIR = home / "inbox"
    settings.QUERY_DIR = home / "queries"
    settings.MEDIA_ROOT = home / "media"
    return home


def errors() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == "search.E001"]


def test_the_default_layout_passes(home):
    assert errors() == []


def test_an_inbox_that_holds_the_home_is_refused_naming_both_folders(home, settings):
    settings.INBOX_DIR = home
    found = errors()
    assert [error.msg.split(" ")[0] for error in found] == ["QUERY_DIR", "MEDIA_ROOT"]
    assert found[0].msg.startswith(f"QUERY_DIR {home / 'queries'} is inside the watched inbox {home}:")
    assert found[1].msg.startswith(f"MEDIA_ROOT {home / 'media'} is inside the watched inbox {home}:")
    assert "REVSEARCH_INBOX" in found[0].hint and "REVSEARCH_HOME" in found[0].hint


@pytest.mark.parametrize(
    "inbox, message",
    [
        ("queries", "QUERY_DIR {home}/queries is inside the watched inbox {home}/queries:"),
        ("media", "MEDIA_ROOT {home}/media is inside the watched inbox {home}/media:"),
        ("media/crops", "the watched inbox {home}/media/crops is inside MEDIA_ROOT {home}/media:"),
    ],
)
def test_an_inbox_that_is_or_is_in_the_query_or_media_folder_is_refused(home, settings, inbox, message):
    settings.INBOX_DIR = home / inbox
    assert [error.msg.split(": ")[0] + ":" for error in errors()] == [message.format(home=home)]


def test_a_link_into_the_home_counts_as_the_home(home, settings, tmp_path_factory):
    link = tmp_path_factory.mktemp("elsewhere") / "inbox"
    link.symlink_to(home)
    settings.INBOX_DIR = link
    assert len(errors()) == 2


def test_manage_py_commands_stop_on_it(home, settings):
    settings.INBOX_DIR = home
    with pytest.raises(SystemCheckError, match="search.E001"):
        call_command("check")
