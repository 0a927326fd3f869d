"""The people page at archive size (issue 16): many people with faces in photos and videos, some named, some with
a chosen cover, rendered through Django's test client signed in, in a scratch database of the benchmark's own."""

import logging
import secrets
import statistics
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from benchmarks.people_scale import scratch_archive
from media_index import face_engine
from media_index.models import Asset, Face, Frame
from people.models import Person

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
PAGE_MAX_MS = 300
BATCH = 5000
# The archive behind the page: each person has at least the faces a person needs to form (PEOPLE_MIN_FACES, 2),
# about 10 on average (a long geometric tail), a fifth of them in video frames as moments of a few frames each;
# several people share a photo; a fifth of the people are named, one in fifty is hidden, one in three has a chosen
# cover.
MIN_FACES = 2
MEAN_FACES = 10
VIDEO_SHARE = 0.2
FACES_PER_PHOTO = 2
TRACK_FRAMES = (2, 8)
VIDEOS = 200
NAMED, HIDDEN, CHOSEN_COVER = 0.2, 0.02, 0.3
YEARS = 10


def fill_people(count: int, seed: int = 0) -> dict:
    """count people and their faces, photos, videos and frames in this process's database (see the constants)."""
    rng = np.random.default_rng(seed)
    model_name = face_engine.model_name()
    crop = "crops/synthetic.jpg"
    sizes = MIN_FACES + rng.geometric(1 / (MEAN_FACES - MIN_FACES + 1), size=count) - 1
    owners = np.repeat(np.arange(count), sizes)  # the person of each face
    in_video = rng.random(len(owners)) < VIDEO_SHARE
    with transaction.atomic():
        people = Person.objects.bulk_create(
            Person(
                name=f"Person name {index:05d}" if rng.random() < NAMED else "",
                hidden=bool(rng.random() < HIDDEN),
            )
            for index in range(count)
        )
        photo_faces = np.flatnonzero(~in_video)
        photo_count = max(1, len(photo_faces) // FACES_PER_PHOTO)
        photos = _assets(Asset.Kind.IMAGE, photo_count, rng, preview=crop, width=250, height=250)
        videos = _assets(Asset.Kind.VIDEO, VIDEOS, rng, width=1280, height=720, duration=3600.0)
        faces, frames, tracks = [], [], []
        for face in photo_faces:
            asset = photos[int(rng.integers(len(photos)))]
            faces.append(_face(asset, people[owners[face]], None, model_name, crop, rng))
        # A person's video faces come as tracks: a few consecutive frames of one video, one face a frame.
        next_frame = dict.fromkeys(range(VIDEOS), 0)
        for person, video_faces in _by_owner(owners, in_video):
            done = 0
            while done < video_faces:
                length = min(int(rng.integers(*TRACK_FRAMES, endpoint=True)), video_faces - done)
                video = int(rng.integers(VIDEOS))
                first = next_frame[video]
                next_frame[video] += length
                track_frames = [
                    Frame(asset=videos[video], index=i, timestamp=float(i)) for i in range(first, first + length)
                ]
                frames += track_frames
                tracks.append(len(faces))
                faces += [_face(videos[video], people[person], frame, model_name, crop, rng) for frame in track_frames]
                done += length
        _batched(Frame, frames)  # keys first: bulk_create then takes each face's frame key from its frame
        faces = _batched(Face, faces)
        _link_tracks(faces, tracks)
        covers = _choose_covers(people, faces, rng)
        _make_user()
    return {
        "people": count,
        "named": sum(1 for person in people if person.name),
        "hidden": sum(1 for person in people if person.hidden),
        "chosen_covers": covers,
        "faces": len(faces),
        "photos": len(photos),
        "videos": len(videos),
        "moments": len(tracks),
    }


def _assets(kind: str, count: int, rng: np.random.Generator, **fields) -> list:
    """count indexed assets of this kind, their files' times spread over YEARS years."""
    now, suffix = time.time(), "jpg" if kind == Asset.Kind.IMAGE else "mp4"
    return _batched(
        Asset,
        (
            Asset(
                path=f"/synthetic-people/{kind}-{index}.{suffix}",
                sha256=secrets.token_hex(32),
                kind=kind,
                size=0,
                mtime=now - rng.uniform(0, YEARS * 365 * 86400),
                status=Asset.Status.INDEXED,
                model_name=face_engine.model_name(),
                **fields,
            )  # fmt: skip
            for index in range(count)
        ),
    )


def _face(asset, person, frame, model_name: str, crop: str, rng: np.random.Generator):
    return Face(
        asset=asset, frame=frame, person=person, left=10, top=10, right=110, bottom=110,
        probability=float(rng.uniform(0.95, 1.0)), crop=crop, model_name=model_name,
    )  # fmt: skip


def _by_owner(owners: np.ndarray, in_video: np.ndarray) -> list[tuple[int, int]]:
    """(person, how many of their faces are in videos) for each person with any."""
    people, counts = np.unique(owners[in_video], return_counts=True)
    return list(zip(people.tolist(), counts.tolist(), strict=True))


def _batched(model, objects) -> list:
    """bulk_create in batches, keeping the objects (with their new keys)."""
    made = list(objects)
    for start in range(0, len(made), BATCH):
        model.objects.bulk_create(made[start : start + BATCH])
    return made


def _link_tracks(faces: list, starts: list[int]) -> None:
    """Each video face's track is the key of the first face of its track, as media_index.tracks keeps it."""
    ends = starts[1:] + [len(faces)]
    changed = []
    for start, end in zip(starts, ends, strict=True):
        for face in faces[start:end]:
            face.track = faces[start].pk
            changed.append(face)
    Face.objects.bulk_update(changed, ["track"], batch_size=BATCH)


def _choose_covers(people: list, faces: list, rng: np.random.Generator) -> int:
    """A chosen cover (one of their faces) for CHOSEN_COVER of the people; the others show their clearest face."""
    first_face = {}
    for face in faces:
        first_face.setdefault(face.person_id, face.pk)
    chosen = [person for person in people if rng.random() < CHOSEN_COVER]
    for person in chosen:
        person.cover_id = first_face[person.pk]
    Person.objects.bulk_update(chosen, ["cover"], batch_size=BATCH)
    return len(chosen)


def _make_user():
    return get_user_model().objects.create_user("people-benchmark", password=secrets.token_urlsafe(16))


def render_times(renders: int = 7) -> dict:
    """The people page as the signed-in user gets it: milliseconds per render (after one to warm up), queries."""
    client = Client(SERVER_NAME="localhost")
    client.force_login(get_user_model().objects.get(username="people-benchmark"))
    url = reverse("people:list")
    queries: list[float] = []
    with connection.execute_wrapper(_timed_query(queries)):
        first = client.get(url, secure=settings.HTTPS)
    if first.status_code != 200:
        raise RuntimeError(f"{url} answered HTTP {first.status_code}, not 200: is the people page broken?")
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        client.get(url, secure=settings.HTTPS)
        times.append(1000 * (time.perf_counter() - started))
    return {
        "url": url,
        "renders": renders,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
        "queries_ms": round(sum(queries), 1),
        "slowest_query_ms": round(max(queries, default=0.0), 1),
        "bytes": len(first.content),
    }


def _timed_query(milliseconds: list[float]):
    """A database execute wrapper that notes how long each query took."""

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            milliseconds.append(1000 * (time.perf_counter() - started))

    return timed


def page_scale(people: int, say: Say, renders: int = 7, seed: int = 0) -> dict:
    """The people page with `people` people, in a scratch archive of the benchmark's own."""
    say(f"people_page: {people:,} people in a scratch database")
    with scratch_archive(vectors=False):
        return page_in_archive(people, say, renders, seed)


def page_in_archive(people: int, say: Say, renders: int = 7, seed: int = 0) -> dict:
    """Fill this process's database with people, then time the page over them."""
    started = time.perf_counter()
    made = fill_people(people, seed)
    say(
        f"  made {made['people']:,} people ({made['named']:,} named, {made['hidden']} hidden, {made['chosen_covers']:,}"
        f" chosen covers), {made['faces']:,} faces in {made['photos']:,} photos and {made['moments']:,} moments"
        f" of {made['videos']} videos, in {time.perf_counter() - started:.0f} s"
    )
    figures = render_times(renders) | {"data": made, "target_ms": PAGE_MAX_MS}
    figures["meets_target"] = figures["median_ms"] < PAGE_MAX_MS
    say(
        f"  {figures['url']}: median {figures['median_ms']} ms over {renders} renders (min {figures['min_ms']}, max"
        f" {figures['max_ms']}), {figures['queries']} queries taking {figures['queries_ms']} ms (slowest"
        f" {figures['slowest_query_ms']} ms),"
        f" {figures['bytes']:,} bytes"
    )
    return figures
