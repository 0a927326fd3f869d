"""Indexing videos: real ffmpeg and a real Milvus Lite server; the face engine is faked (one face a frame)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from media_index import dispatch, face_engine, indexing, intake, upkeep, video, video_probe
from media_index.models import Asset, Face, Frame
from tests.conftest import EXAMPLES
from tests.media_index.conftest import fake_face
from tests.media_index.test_video_limits import generated, overwrite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"


class Crash(BaseException):
    """Stands for a worker killed mid-task: not an error the service may catch."""


@pytest.fixture
def engine(monkeypatch):
    """One face in every frame; `engine.crash_on_call` makes the n-th batch call die like a killed worker."""

    class Engine:
        calls = 0
        crash_on_call: int | None = None
        sizes: set[tuple[int, int]] = set()

        def find_faces_batch(self, images):
            self.calls += 1
            self.sizes |= {image.size for image in images}
            if self.calls == self.crash_on_call:
                raise Crash
            return [[fake_face(self.calls * 100 + i)] for i in range(len(images))]

    fake = Engine()
    monkeypatch.setattr(face_engine, "find_faces_batch", fake.find_faces_batch)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    return fake


@pytest.fixture
def queued_video(tmp_path, monkeypatch, vector_store_on, media_root, settings):
    from media_index import tasks

    settings.VIDEO_CHUNK_FRAMES = 4
    settings.VIDEO_REFINE_EDGES = False  # the faked engine finds nothing to refine with (see test_spans.py)
    sent = []
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))

    def queue(source: Path = HAMILTON, name: str = "clip.mp4") -> Asset:
        asset = intake.register_path(Path(shutil.copy(source, tmp_path / name)))
        asset.sent = sent
        return asset

    return queue


def frame_times(asset: Asset) -> list[float]:
    return list(Frame.objects.filter(asset=asset).order_by("index").values_list("timestamp", flat=True))


@pytest.mark.shared_data
def test_a_video_is_indexed_frame_by_frame(engine, queued_video, vector_store_on):
    asset = queued_video()
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    # The grid's 10 frames and the first frames of the 3 shots that start between them.
    expected = len(list(video.sample_frames(HAMILTON, video_probe.probe(HAMILTON), 1.0)))
    assert expected == video.expected_frames(video_probe.probe(HAMILTON), 1.0) + 3
    assert asset.frames_total == expected and asset.frames_done == expected
    assert asset.duration == pytest.approx(9.17, abs=0.05)
    times = frame_times(asset)
    assert len(times) == expected and times[0] == pytest.approx(0.0, abs=0.05)
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))
    assert Face.objects.filter(asset=asset, frame__isnull=False).count() == expected
    assert all(Path(frame.thumbnail.path).is_file() for frame in Frame.objects.filter(asset=asset))
    assert vector_store_on.count() == expected
    # The fourth frame's face (first batch call, fourth image) is stored at that frame's time.
    hit = vector_store_on.search(fake_face(100 + 3).embedding, 1)[0]
    assert hit.timestamp == pytest.approx(times[3], abs=1e-3)


@pytest.mark.shared_data
def test_a_long_video_hands_over_to_a_new_task_and_finishes_the_same(engine, queued_video, settings):
    settings.VIDEO_SLICE_SECONDS = 0  # every chunk ends the slice
    asset = queued_video()
    assert indexing.index_asset(asset.pk) is None
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.PROCESSING
    for _ in range(10):
        # Each slice sends the next task; only that task may carry on.
        asset_id, task_id = asset.sent[-1]
        assert indexing.index_asset(asset_id, task_id="an-earlier-task") is None
        if indexing.index_asset(asset_id, task_id=task_id) is not None:
            break
    indexed = Asset.objects.get(pk=asset.pk)
    assert indexed.status == Asset.Status.INDEXED
    assert indexed.worker_deaths == 0, "a slice handed over to a new task is not a death"
    expected = [frame.timestamp for frame in video.sample_frames(HAMILTON, video_probe.probe(HAMILTON), 1.0)]
    assert frame_times(asset) == pytest.approx(expected, abs=1e-6)


@pytest.mark.shared_data
def test_a_crashed_worker_resumes_where_it_stopped(engine, queued_video, vector_store_on):
    asset = queued_video()
    task_id = asset.sent[-1][1]
    engine.crash_on_call = 2
    with pytest.raises(Crash):
        indexing.index_asset(asset.pk, task_id=task_id)
    asset.refresh_from_db()
    assert asset.status == Asset.Status.PROCESSING and asset.frames_done == 4
    engine.crash_on_call = None
    # The redelivered task carries on from frame 4; no frame is stored twice.
    assert indexing.index_asset(asset.pk, task_id=task_id) == Asset.Status.INDEXED
    expected = [frame.timestamp for frame in video.sample_frames(HAMILTON, video_probe.probe(HAMILTON), 1.0)]
    assert frame_times(asset) == pytest.approx(expected, abs=1e-6)
    assert vector_store_on.count() == len(expected)
    assert Asset.objects.get(pk=asset.pk).worker_deaths == 1


@pytest.mark.shared_data
def test_a_video_indexed_again_stays_searchable_and_is_replaced_frame_by_frame(engine, queued_video, vector_store_on):
    asset = queued_video()
    assert indexing.index_asset(asset.pk, task_id=asset.sent[-1][1]) == Asset.Status.INDEXED
    old = set(Face.objects.values_list("pk", flat=True))
    times = frame_times(asset)
    assert dispatch.requeue([Asset.objects.get(pk=asset.pk)]) == 1
    assert set(Face.objects.values_list("pk", flat=True)) == old  # queued: every old face is still there
    engine.crash_on_call = engine.calls + 2  # the new run stores one chunk of 4 frames, then its worker dies
    task_id = asset.sent[-1][1]
    with pytest.raises(Crash):
        indexing.index_asset(asset.pk, task_id=task_id)
    # Halfway: the first 4 frames are the new run's, the rest still the old run's, each time once.
    assert frame_times(asset) == pytest.approx(times, abs=1e-6)
    kept = set(Face.objects.values_list("pk", flat=True))
    assert len(kept & old) == len(times) - 4 and vector_store_on.count() == len(times)
    engine.crash_on_call = None
    assert indexing.index_asset(asset.pk, task_id=task_id) == Asset.Status.INDEXED
    assert frame_times(asset) == pytest.approx(times, abs=1e-6)
    assert not set(Face.objects.values_list("pk", flat=True)) & old
    assert vector_store_on.count() == len(times) and upkeep.check_index().consistent


def bad_video(kind: str, folder: Path) -> Path:
    target = folder / f"{kind}.mp4"
    if kind == "text":
        target.write_text("not a video")
    elif kind == "playlist":
        target.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:9.0,\n{HAMILTON}\n#EXT-X-ENDLIST\n")
    else:
        command = ["ffmpeg", "-v", "error", "-i", str(HAMILTON), "-vn", "-c:a", "copy", str(target)]
        subprocess.run(command, check=True)
    return target


@pytest.mark.parametrize(
    "kind, message", [("text", "not a video"), ("audio", "no video stream"), ("playlist", "is an hls playlist")]
)
@pytest.mark.shared_data
def test_bad_videos_fail_with_a_reason_and_the_queue_goes_on(engine, queued_video, tmp_path, kind, message):
    source = bad_video(kind, tmp_path)
    asset = queued_video(source, name="bad.mp4")
    assert indexing.index_asset(asset.pk) == Asset.Status.FAILED
    asset.refresh_from_db()
    assert asset.error.startswith(asset.path) and message in asset.error.lower()
    assert not Frame.objects.filter(asset=asset).exists()
    good = queued_video()
    assert indexing.index_asset(good.pk) == Asset.Status.INDEXED


def test_a_damaged_stretch_keeps_the_other_frames_and_is_named_in_a_warning(engine, queued_video, tmp_path):
    source = generated(tmp_path / "source.mp4", 10)
    overwrite(source, 0.5, 4000)
    asset = queued_video(source, name="damaged.mp4")
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    assert asset.error == ""
    [warning] = asset.warning.splitlines()
    start, end = map(
        float, re.match(r"damaged from (\d+\.\d+) s to (\d+\.\d+) s: \d+ decoding errors", warning).groups()
    )
    kept = frame_times(asset)
    assert 2 <= start < end <= 8 and len(kept) >= 8
    assert all(round(time) in kept for time in range(10) if time < start or time > end)
    assert asset.frames_done == len(kept) and asset.faces.count() == len(kept)


def test_a_damaged_stretch_is_named_once_when_slices_carry_on(engine, queued_video, tmp_path, settings):
    source = generated(tmp_path / "source.mp4", 10)
    overwrite(source, 0.5, 4000)
    settings.VIDEO_SLICE_SECONDS = 0  # every chunk of 4 frames ends the slice
    asset = queued_video(source, name="damaged.mp4")
    status = indexing.index_asset(asset.pk)
    while status is None:
        status = indexing.index_asset(*asset.sent[-1])
    assert status == Asset.Status.INDEXED
    assert len(Asset.objects.get(pk=asset.pk).warning.splitlines()) == 1


def test_a_video_that_decodes_nothing_fails(engine, queued_video, tmp_path):
    source = generated(tmp_path / "source.mp4", 4, "320x240", 25, "-movflags", "+faststart")
    data = source.read_bytes()
    media = data.index(b"mdat") + 4
    source.write_bytes(data[:media] + bytes(len(data) - media))
    asset = queued_video(source, name="zeros.mp4")
    assert indexing.index_asset(asset.pk) == Asset.Status.FAILED
    asset.refresh_from_db()
    assert "no frame of its 4.00 s could be decoded" in asset.error
    assert not Frame.objects.filter(asset=asset).exists()


@pytest.mark.shared_data
def test_large_frames_are_indexed_scaled_down_and_the_asset_keeps_its_size(engine, queued_video, settings):
    settings.VIDEO_FRAME_MAX_SIDE = 320
    asset = queued_video()
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    assert (asset.width, asset.height) == (640, 360)
    assert engine.sizes == {(320, 180)}


@pytest.mark.shared_data
def test_deleting_a_video_removes_its_frames_faces_and_vectors(engine, queued_video, vector_store_on):
    asset = queued_video()
    indexing.index_asset(asset.pk)
    thumbnails = [Path(frame.thumbnail.path) for frame in Frame.objects.filter(asset=asset)]
    Asset.objects.get(pk=asset.pk).delete()
    assert vector_store_on.count() == 0
    assert not Frame.objects.exists() and not Face.objects.exists()
    assert not any(path.exists() for path in thumbnails)
