"""A long video's stretches: split, indexed by several tasks in any order, joined into what one task would have made.

Real ffmpeg on the Hamilton clip (9.2 s, 3 shot cuts) in stretches of 3 s, and a real Milvus Lite server; the face
engine is faked: one face in every frame, the same person in the same place, so tracks run from cut to cut.
"""

import hashlib
import shutil
from pathlib import Path

import pytest

from media_index import dispatch, indexing, intake, stretches, vector_store, video, video_probe
from media_index.models import Asset, Face, Frame, Stretch, Track
from media_index.video_probe import VideoInfo
from tests.conftest import EXAMPLES
from tests.media_index.conftest import fake_face

HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"


class Crash(BaseException):
    """Stands for a worker killed mid-task: not an error the service may catch."""


def info(duration: float) -> VideoInfo:
    return VideoInfo(duration, 25.0, 640, 360, 0, 0.0, "h264", 640, 360)


@pytest.mark.parametrize(
    ("duration", "fps", "seconds", "expected"),
    [
        (119.0, 1.0, 60, []),  # shorter than two stretches: one task, in order
        (300.0, 1.0, 0, []),  # stretches off
        (300.0, 1.0, 60, [(0.0, 60.0), (60.0, 120.0), (120.0, 180.0), (180.0, 240.0), (240.0, None)]),
        (150.0, 1.0, 60, [(0.0, 60.0), (60.0, None)]),  # the last runs to the end: never a sliver
        (9.17, 2.0, 3, [(0.0, 3.0), (3.0, 6.0), (6.0, None)]),
        (130.0, 0.3, 60, [(0.0, 60.0), (60.0, None)]),  # whole sampling intervals: 18 of 1/0.3 s each
    ],
)
def test_a_video_is_split_into_whole_sampling_intervals(duration, fps, seconds, expected):
    assert [
        (round(start, 6), end and round(end, 6)) for start, end in stretches.plan(info(duration), fps, seconds)
    ] == expected


def test_a_very_long_video_gets_longer_stretches_not_more_than_the_index_allows():
    parts = stretches.plan(info(10 * 24 * 3600.0), 1.0, 60)  # ten days
    assert len(parts) <= stretches.MAX_STRETCHES
    assert parts[-1][0] + 2 * (parts[1][0] - parts[0][0]) > 10 * 24 * 3600.0  # they still cover it all
    assert stretches.MAX_STRETCHES * Stretch.FRAME_RANGE < 2**31


@pytest.fixture(scope="module")
def frame_times() -> dict[bytes, float]:
    """The clip's sampled frames by their pixels, so that the faked engine knows which frame it is shown."""
    return {
        hashlib.sha256(frame.image.tobytes()).digest(): frame.timestamp
        for frame in video.sample_frames(HAMILTON, video_probe.probe(HAMILTON), 1.0)
    }


@pytest.fixture
def engine(monkeypatch, frame_times):
    """In each frame, the face of `engine.who(time)` (a seed: the same seed is the same person) in the same place, or
    none; by default the same person throughout. `engine.fail_on_call` makes the n-th call raise it."""
    from media_index import face_engine

    class Engine:
        calls = 0
        fail_on_call: tuple[int, BaseException] | None = None

        @staticmethod
        def who(time: float) -> int | None:
            return 7

        def find_faces_batch(self, images):
            self.calls += 1
            if self.fail_on_call and self.fail_on_call[0] == self.calls:
                raise self.fail_on_call[1]
            seeds = [self.who(frame_times[hashlib.sha256(image.tobytes()).digest()]) for image in images]
            return [[] if seed is None else [fake_face(seed)] for seed in seeds]

    fake = Engine()
    monkeypatch.setattr(face_engine, "find_faces_batch", fake.find_faces_batch)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    return fake


@pytest.fixture
def queue(tmp_path, monkeypatch, vector_store_on, media_root, settings):
    """Register the clip; the tasks sent are recorded (assets in `queue.assets`, stretches in `queue.stretches`)."""
    from media_index import tasks

    settings.VIDEO_CHUNK_FRAMES = 2
    settings.VIDEO_REFINE_EDGES = False  # the faked engine finds nothing to refine with (see test_spans.py)
    settings.VIDEO_STRETCH_SECONDS = 3

    class Sent:
        def __init__(self) -> None:
            self.assets: list[tuple[int, str]] = []
            self.stretches: list[tuple[int, str]] = []

    sent = Sent()
    monkeypatch.setattr(
        tasks.index_asset_task, "apply_async", lambda args, task_id: sent.assets.append((*args, task_id))
    )
    monkeypatch.setattr(
        tasks.index_stretch_task, "apply_async", lambda args, task_id: sent.stretches.append((*args, task_id))
    )

    def register(name: str = "clip.mp4") -> Asset:
        return intake.register_path(Path(shutil.copy(HAMILTON, tmp_path / name)))

    sent.register = register
    return sent


def current(sent: list[tuple[int, str]]) -> dict[int, str]:
    """The latest task sent for each stretch (or asset): only that one may work on it."""
    return dict(sent)


def run_stretches(queue, order=None, limit: int = 50) -> None:
    """Run the stretches' current tasks, in the given order of stretch numbers, until none is left undone."""
    for _ in range(limit):
        waiting = {s.number: s.pk for s in Stretch.objects.exclude(status=Stretch.Status.DONE)}
        if not waiting:
            return
        number = next((n for n in order or sorted(waiting) if n in waiting), min(waiting))
        indexing.index_stretch(waiting[number], current(queue.stretches)[waiting[number]])
    raise AssertionError("the stretches did not finish")


def run_asset_task(queue) -> str | None:
    """Run the asset's latest task: the split, or the join that the last stretch done sent."""
    asset_id, task_id = queue.assets[-1]
    return indexing.index_asset(asset_id, task_id=task_id)


def assert_as_one_task(asset: Asset, whole_frames: list, whole_spans: list) -> None:
    """The frames (none twice, none missing, numbered in time order) and the track spans of one task's run."""
    assert frames_of(asset) == [(index, pytest.approx(time, abs=1e-6)) for index, time in whole_frames]
    assert spans(asset) == whole_spans


def spans(asset: Asset) -> list[tuple[float, float, bool, bool]]:
    return [
        (round(t.start, 4), round(t.end, 4), t.start_settled, t.end_settled)
        for t in Track.objects.filter(asset=asset).order_by("start")
    ]


def frames_of(asset: Asset) -> list[tuple[int, float]]:
    return list(Frame.objects.filter(asset=asset).order_by("index").values_list("index", "timestamp"))


@pytest.fixture
def in_one_piece(engine, queue, settings, request):
    """The clip indexed by one task, in order: what the stretches must come to."""
    settings.VIDEO_STRETCH_SECONDS = 0
    engine.who = getattr(request, "param", engine.who)
    asset = queue.register("whole.mp4")
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    settings.VIDEO_STRETCH_SECONDS = 3
    whole = frames_of(asset), spans(asset), Face.objects.filter(asset=asset).count()
    Asset.objects.filter(pk=asset.pk).delete()  # so that the same clip is not a duplicate of it
    return whole


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_stretches_in_any_order_make_the_frames_and_tracks_of_one_task(engine, queue, in_one_piece, order, settings):
    """One person throughout: tracks run from cut to cut, across the boundaries at 3 and 6 s."""
    whole_frames, whole_spans, whole_faces = in_one_piece
    settings.VIDEO_SLICE_SECONDS = 0  # every chunk ends its task's slice: a new task carries on
    asset = queue.register()
    assert indexing.index_asset(asset.pk) is None  # split: the stretches' tasks carry on
    parts = list(Stretch.objects.filter(asset=asset))
    assert [(p.start, p.end) for p in parts] == [(0.0, 3.0), (3.0, 6.0), (6.0, None)]
    assert sorted(current(queue.stretches)) == [p.pk for p in parts]
    run_stretches(queue, order)
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.PROCESSING  # until the join
    assert run_asset_task(queue) == Asset.Status.INDEXED
    asset.refresh_from_db()
    # No frame twice, none missing, numbered in time order; every face's vector stored; the stretches gone.
    assert frames_of(asset) == [(index, pytest.approx(time, abs=1e-6)) for index, time in whole_frames]
    assert asset.frames_done == asset.frames_total == len(whole_frames)
    assert Face.objects.filter(asset=asset).count() == whole_faces
    assert sorted(vector_store.stored_faces(asset.pk)) == sorted(
        Face.objects.filter(asset=asset).values_list("pk", flat=True)
    )
    assert not Stretch.objects.exists()
    # Tracks that crossed a boundary were joined: the same spans as one task's, from cut to cut.
    assert spans(asset) == whole_spans
    assert len(whole_spans) == 4  # the clip's 4 shots
    assert asset.worker_deaths == 0 and all(face.track is not None for face in Face.objects.filter(asset=asset))


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_a_stretch_whose_worker_died_resumes_where_it_stopped(engine, queue, in_one_piece):
    whole_frames, whole_spans, _ = in_one_piece
    asset = queue.register()
    indexing.index_asset(asset.pk)
    middle = Stretch.objects.get(number=1)
    task_id = current(queue.stretches)[middle.pk]
    engine.fail_on_call = (engine.calls + 2, Crash())  # one chunk stored, then the worker dies
    with pytest.raises(Crash):
        indexing.index_stretch(middle.pk, task_id)
    middle.refresh_from_db()
    assert middle.frames_done == 2 and middle.status == Stretch.Status.PROCESSING
    # A stray vector, as a chunk killed between Milvus and the commit leaves: the join deletes it.
    vector_store.insert([vector_store.FaceVector(999_999, fake_face(1).embedding, asset.pk, "video", 4.5)])
    assert indexing.index_stretch(middle.pk, "an-earlier-task") is None  # not its task: nothing done
    indexing.index_stretch(middle.pk, task_id)  # the same task, delivered again
    assert Stretch.objects.get(pk=middle.pk).worker_deaths == 1
    run_stretches(queue)
    assert run_asset_task(queue) == Asset.Status.INDEXED
    assert frames_of(asset) == [(index, pytest.approx(time, abs=1e-6)) for index, time in whole_frames]
    assert 999_999 not in vector_store.stored_faces(asset.pk)
    assert spans(asset) == whole_spans
    assert Asset.objects.get(pk=asset.pk).worker_deaths == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_a_failing_stretch_fails_the_video_and_stops_the_others(engine, queue):
    asset = queue.register()
    indexing.index_asset(asset.pk)
    first, middle = Stretch.objects.get(number=0), Stretch.objects.get(number=1)
    tasks = current(queue.stretches)
    indexing.index_stretch(first.pk, tasks[first.pk])  # done
    engine.fail_on_call = (engine.calls + 1, ValueError("a broken frame"))
    assert indexing.index_stretch(middle.pk, tasks[middle.pk]) == Asset.Status.FAILED
    failed = Asset.objects.get(pk=asset.pk)
    assert "unexpected ValueError: a broken frame" in failed.error and str(failed.path) in failed.error
    assert not Frame.objects.filter(asset=asset).exists() and not vector_store.stored_faces(asset.pk)
    # The last stretch's task finds its stretch gone and stores nothing.
    last = [stretch_id for stretch_id in tasks if stretch_id not in (first.pk, middle.pk)][0]
    assert indexing.index_stretch(last, tasks[last]) is None
    assert not Frame.objects.filter(asset=asset).exists() and not Stretch.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_a_video_queued_again_while_its_stretches_run_starts_over(engine, queue, in_one_piece):
    whole_frames, whole_spans, _ = in_one_piece
    asset = queue.register()
    indexing.index_asset(asset.pk)
    old_tasks = current(queue.stretches)
    first = Stretch.objects.get(number=0)
    indexing.index_stretch(first.pk, old_tasks[first.pk])
    assert dispatch.requeue([Asset.objects.get(pk=asset.pk)]) == 1
    for stretch_id, task_id in old_tasks.items():
        assert indexing.index_stretch(stretch_id, task_id) is None  # their stretches are gone
    assert run_asset_task(queue) is None  # split again
    run_stretches(queue, [2, 0, 1])
    assert run_asset_task(queue) == Asset.Status.INDEXED
    assert_as_one_task(asset, whole_frames, whole_spans)


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_milvus_down_in_a_stretch_retries_it_without_counting_a_death(engine, queue, monkeypatch):
    asset = queue.register()
    indexing.index_asset(asset.pk)
    middle = Stretch.objects.get(number=1)
    task_id = current(queue.stretches)[middle.pk]
    insert = vector_store.insert

    def down(faces):
        raise vector_store.VectorStoreUnavailable("Milvus at http://127.0.0.1:1 is unreachable")

    monkeypatch.setattr(vector_store, "insert", down)
    with pytest.raises(vector_store.VectorStoreUnavailable):
        indexing.index_stretch(middle.pk, task_id)
    assert Stretch.objects.get(pk=middle.pk).status == Stretch.Status.RETRYING
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.RETRYING
    monkeypatch.setattr(vector_store, "insert", insert)
    indexing.index_stretch(middle.pk, task_id)  # Celery's retry keeps the task id
    middle.refresh_from_db()
    assert middle.status == Stretch.Status.DONE and middle.worker_deaths == 0
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.PROCESSING


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_a_restarted_service_sends_the_unfinished_stretches_again(engine, queue):
    asset = queue.register()
    indexing.index_asset(asset.pk)
    first = Stretch.objects.get(number=0)
    old = current(queue.stretches)
    indexing.index_stretch(first.pk, old[first.pk])
    assert dispatch.requeue_unfinished() == 1  # the service starts again: the asset's task first
    assert run_asset_task(queue) is None
    again = current(queue.stretches)
    assert set(again) == set(old) and all(again[s] != old[s] for s in again if s != first.pk)
    assert again[first.pk] == old[first.pk], "a stretch done is not sent again"
    run_stretches(queue)
    assert run_asset_task(queue) == Asset.Status.INDEXED
    expected = [frame.timestamp for frame in video.sample_frames(HAMILTON, video_probe.probe(HAMILTON), 1.0)]
    assert [time for _, time in frames_of(asset)] == pytest.approx(expected, abs=1e-6)


def someone_leaves_and_another_comes_at_a_boundary(time: float) -> int | None:
    """Person 7 from 1 s until the last frame of the first stretch (2.74 s); person 8 from the first frame of the
    second (3.00 s) to 5 s, in the same place: no track crosses the boundary, and both edges there lie between two
    stretches' frames."""
    return 7 if 1.0 <= time < 2.9 else 8 if 3.0 <= time < 5.0 else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
@pytest.mark.parametrize("in_one_piece", [someone_leaves_and_another_comes_at_a_boundary], indirect=True)
def test_edges_at_a_boundary_are_settled_by_the_join_as_one_task_settles_them(engine, queue, in_one_piece):
    whole_frames, whole_spans, _ = in_one_piece
    # Person 7 until the cut at 2.74 s, and in the shot it starts until halfway to the next frame (3.00 s), where
    # person 8 begins: both edges there are the boundary's.
    assert [(start, end) for start, end, *_ in whole_spans] == [(0.8342, 2.7361), (2.7361, 2.8695), (2.8695, 4.5045)]
    asset = queue.register()
    indexing.index_asset(asset.pk)
    run_stretches(queue, [1, 0, 2])
    assert run_asset_task(queue) == Asset.Status.INDEXED
    assert_as_one_task(asset, whole_frames, whole_spans)


@pytest.mark.django_db(transaction=True)
@pytest.mark.processes
@pytest.mark.shared_data
def test_stretch_tasks_that_never_reached_the_queue_are_sent_again_by_the_watcher(engine, queue, monkeypatch):
    from media_index import tasks

    asset = queue.register()
    real_send = tasks.index_stretch_task.apply_async

    def queue_down(args, task_id):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_stretch_task, "apply_async", queue_down)
    indexing.index_asset(asset.pk)  # split, but no stretch's task reaches the queue
    assert Stretch.objects.filter(task_sent=False).count() == 3 and not queue.stretches
    monkeypatch.setattr(tasks.index_stretch_task, "apply_async", real_send)
    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)
    assert dispatch.send_unsent() == 3
    assert not Stretch.objects.filter(task_sent=False).exists()
    assert current(queue.stretches) == dict(Stretch.objects.values_list("pk", "task_id"))
