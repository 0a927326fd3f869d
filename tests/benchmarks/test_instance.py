"""An instance's status, asked of one reader process that stays up: the same figures `index_status` prints."""

import json
import shutil

import pytest

from benchmarks.instance import Instance, InstanceError
from tests.conftest import SAMPLES


@pytest.fixture
def prepared(tmp_path):
    instance = Instance(tmp_path / "home", "status-test-password-3").prepare()
    yield instance
    instance.stop()  # serve never started: this stops the reader alone


def test_counts_and_records_agree_with_index_status(prepared: Instance) -> None:
    assert prepared.status() == json.loads(prepared.manage("index_status", "--json"))
    assert prepared.assets() == {}
    shutil.copy(SAMPLES / "person_b.jpg", prepared.inbox / "person_b.jpg")
    prepared.manage("watch", "--once")  # records the file and queues it (no worker runs here)
    reader = prepared.reader
    counts = prepared.status()
    assert counts == json.loads(prepared.manage("index_status", "--json"))
    assert counts["queued"] == 1 and counts["faces"] == 0
    records = prepared.assets()
    listed = [json.loads(line) for line in prepared.manage("index_status", "--assets", "--json").splitlines()]
    assert list(records.values()) == listed
    assert records[str(prepared.inbox / "person_b.jpg")]["status"] == "queued"
    assert prepared.reader is reader  # one process answered every question


def test_a_reader_that_died_is_started_again_and_one_that_fails_is_reported(prepared: Instance) -> None:
    prepared.status()
    assert prepared.reader is not None
    prepared.reader.kill()
    prepared.reader.wait()
    assert prepared.status()["queued"] == 0
    prepared.env["DJANGO_SETTINGS_MODULE"] = "no_such_settings"
    prepared.reader.kill()
    prepared.reader.wait()
    with pytest.raises(InstanceError, match="status reader exited"):
        prepared.status()
