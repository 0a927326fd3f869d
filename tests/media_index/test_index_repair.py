"""check_index and reindex on a real database and a real Milvus Lite server; the face engine is faked."""

import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from media_index import indexing, intake, upkeep, vector_store
from media_index.models import Asset
from tests.conftest import SAMPLES
from tests.media_index.conftest import fake_face

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.shared_data]


@pytest.fixture
def indexed(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1), fake_face(2)]
    asset = intake.register_path(Path(shutil.copy(SAMPLES / "two_people.jpg", inbox / "two.jpg")))
    indexing.index_asset(asset.pk)
    return Asset.objects.get(pk=asset.pk)


def test_a_fresh_index_is_consistent(indexed, capsys):
    assert upkeep.check_index().consistent
    call_command("check_index")
    assert "the index is consistent" in capsys.readouterr().out


def test_orphans_lost_vectors_and_changed_files_are_found_and_fixed(indexed, sent, vector_store_on):
    lost = indexed.faces.first().pk
    vector_store.delete_faces([lost])
    vector_store.insert([vector_store.FaceVector(999_999, fake_face(3).embedding, asset_id=12345, kind="image")])
    Path(indexed.path).write_bytes((SAMPLES / "person_b.jpg").read_bytes())

    check = upkeep.check_index()
    assert check.faces_without_vectors == [lost]
    assert check.vectors_without_faces == [999_999]
    assert check.changed_files == [indexed.path]
    with pytest.raises(SystemExit) as stopped:
        call_command("check_index")
    assert stopped.value.code == 1

    sent.clear()
    call_command("check_index", "--fix")
    assert 999_999 not in vector_store.stored_faces()
    assert sent and set(sent) == {indexed.pk}
    assert Asset.objects.get(pk=indexed.pk).status == Asset.Status.QUEUED


def test_reindex_failed_queues_only_the_failed(indexed, sent, inbox):
    broken = inbox / "broken.jpg"
    broken.write_bytes(b"not a photo")
    failed = intake.register_path(broken)
    indexing.index_asset(failed.pk)
    sent.clear()
    call_command("reindex", "--failed")
    assert sent == [failed.pk]
    with pytest.raises(Exception, match="say which assets"):
        call_command("reindex")
