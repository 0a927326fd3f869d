"""Measure what one worker process does per photo, and how long a search takes, on this machine."""

import statistics
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media_index import face_engine, services, vector_store


class Command(BaseCommand):
    help = (
        "Index photos in memory (decode, detect, embed) into a scratch Milvus collection, then search with each;"
        " prints photos per second and search latency. The archive's own index is not touched."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder", type=Path, help="A folder of photos, e.g. ../shared/data/lfw.")
        parser.add_argument("--limit", type=int, default=200, help="How many photos (default 200).")
        parser.add_argument("--top", type=int, default=20)

    def handle(self, *args, folder: Path, limit: int, top: int, **options) -> None:
        photos = list(services.walk_files([folder]))[:limit]
        if not photos:
            raise CommandError(f"no photos under {folder}")
        load_started = time.perf_counter()
        face_engine.load()
        self.stdout.write(f"models loaded in {time.perf_counter() - load_started:.1f} s ({face_engine.model_name()})")

        with vector_store.scratch_collection(face_engine.dimension()) as collection:
            embeddings = self.index(photos, collection)
            self.search(embeddings, top, collection)

    def index(self, photos: list[Path], collection: str) -> list:
        face_seconds, insert_seconds, embeddings, next_id = 0.0, 0.0, [], 1
        for number, photo in enumerate(photos, start=1):
            started = time.perf_counter()
            faces = face_engine.find_faces(services.open_photo(photo))
            face_seconds += time.perf_counter() - started
            started = time.perf_counter()
            vector_store.insert(
                [vector_store.FaceVector(next_id + i, face.embedding, number, "image") for i, face in enumerate(faces)],
                collection,
            )
            insert_seconds += time.perf_counter() - started
            next_id += len(faces)
            embeddings.extend(face.embedding for face in faces[:1])
            if number % 50 == 0 or number == len(photos):
                self.stdout.write(f"[{number}/{len(photos)}] {number / (face_seconds + insert_seconds):.1f} photos/s")
        total = face_seconds + insert_seconds
        self.stdout.write(
            f"indexed {len(photos)} photos ({next_id - 1} faces) in {total:.1f} s with {settings.TORCH_THREADS}"
            f" torch thread(s): {len(photos) / total:.2f} photos/s per worker process"
            f" (decode+detect+embed {1000 * face_seconds / len(photos):.0f} ms, insert"
            f" {1000 * insert_seconds / len(photos):.0f} ms per photo)"
        )
        return embeddings

    def search(self, embeddings: list, top: int, collection: str) -> None:
        latencies = []
        for embedding in embeddings:
            started = time.perf_counter()
            vector_store.search_many([embedding], top, collection=collection)
            latencies.append(1000 * (time.perf_counter() - started))
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        faces = vector_store.count(collection)
        self.stdout.write(
            f"Milvus top-{top} search over {faces} faces: median {statistics.median(latencies):.1f} ms,"
            f" p95 {p95:.1f} ms ({len(latencies)} queries)"
        )
