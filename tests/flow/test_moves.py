"""Renames and deletes in the watched inbox: a renamed file keeps its asset, a deleted one is shown missing."""

import shutil

import pytest

from tests.conftest import SAMPLES

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]


def test_a_renamed_file_keeps_its_asset_and_a_deleted_one_is_missing(service, indexed, videos):
    folder = service.inbox / "moves"
    folder.mkdir()
    first = folder / "rocket.jpg"
    shutil.copy(SAMPLES / "no_face.jpg", first)  # no face: the other tests' results stay as they are
    assets = service.wait_for(lambda a: a.get(str(first), {}).get("status") == "no_faces", "rocket.jpg indexed")
    asset_id = assets[str(first)]["id"]

    renamed = first.rename(folder / "launch.jpg")
    assets = service.wait_for(lambda a: str(renamed) in a and str(first) not in a, "the rename followed")
    assert assets[str(renamed)]["id"] == asset_id
    assert assets[str(renamed)]["status"] == "no_faces"

    renamed.unlink()
    assets = service.wait_for(lambda a: a[str(renamed)]["status"] == "missing", "the deletion noticed")
    assert "deleted or moved out of the inbox" in assets[str(renamed)]["error"]


def test_the_index_is_consistent_with_the_database(service, indexed, videos):
    assert "the index is consistent" in service.manage("check_index")
