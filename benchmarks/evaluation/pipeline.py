"""The LFW benchmark on the real pipeline: decode, MTCNN, embed, then verification and retrieval through Milvus."""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from media_index import face_engine, imaging, intake, vector_store

from . import lfw, metrics, report

logger = logging.getLogger(__name__)

# Published LFW verification accuracy of each model's weights, with where it was published.
PUBLISHED = {
    "facenet-20180408-casia-webface": (0.9905, "FaceNet 20180408-102900 (CASIA-WebFace), facenet README"),
    "facenet-20180402-vggface2": (0.9965, "FaceNet 20180402-114759 (VGGFace2), facenet README"),
    "dlib-resnet-v1": (0.9938, "dlib_face_recognition_resnet_model_v1, dlib model card"),
}
# Two unit vectors are at most this far apart: a pair with a photo where no face was found counts as different.
NO_FACE_DISTANCE = 2.0
RETRIEVAL_K = 20
KNN_K = 5
FACE_CHOICE = "the face whose box centre is nearest the photo's centre (LFW centres each photo on the person named)"
KNN_SPLIT = (
    f"leave-one-out {KNN_K}-NN: each photo of a person with two or more photos is labelled by the majority of its"
    f" {KNN_K} nearest other photos in the indexed set (ties go to the nearest)"
)


@dataclass
class Embeddings:
    """One vector per photo (None where no face was found), and what detection saw."""

    vectors: dict[Path, np.ndarray | None]
    several_faces: int


class EmbeddingCache:
    """Embeddings on disk by model and file sha256, so a second run of the same photos takes seconds."""

    def __init__(self, folder: Path, model_name: str) -> None:
        self.path = folder / f"{model_name}.npz"
        self.entries: dict[str, tuple[np.ndarray | None, int]] = {}
        self.unsaved = 0
        if self.path.is_file():
            with np.load(self.path) as stored:
                for key, vector, faces in zip(stored["keys"], stored["vectors"], stored["faces"], strict=True):
                    self.entries[str(key)] = (vector if faces else None, int(faces))

    def get(self, key: str) -> tuple[np.ndarray | None, int] | None:
        return self.entries.get(key)

    def put(self, key: str, vector: np.ndarray | None, faces: int, dimension: int) -> None:
        self.entries[key] = (vector, faces)
        self.unsaved += 1
        if self.unsaved >= 500:
            self.save(dimension)

    def save(self, dimension: int) -> None:
        if not self.unsaved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.entries)
        vectors = np.stack(
            [self.entries[key][0] if self.entries[key][1] else np.zeros(dimension, np.float32) for key in keys]
        )
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, keys=np.array(keys), vectors=vectors, faces=np.array([self.entries[k][1] for k in keys]))
        partial.replace(self.path)
        self.unsaved = 0


def embed_photos(photos: list[Path], model: str, cache_folder: Path) -> Embeddings:
    """One embedding per photo through the real pipeline, from the cache where it was computed before."""
    model_name, dimension = face_engine.model_name(model), face_engine.dimension(model)
    # Embeddings of another precision in a file of their own; float32's keeps the name it always had.
    precision = face_engine.precision(model)
    cache = EmbeddingCache(cache_folder, model_name if precision == "float32" else f"{model_name}-{precision}")
    vectors: dict[Path, np.ndarray | None] = {}
    several = 0
    for photo in tqdm(photos, desc=f"embedding ({model_name})", unit="photo", mininterval=2):
        key = intake.file_sha256(photo)
        if (cached := cache.get(key)) is None:
            image = imaging.open_photo(photo)
            faces = face_engine.find_faces(image, model=model)
            chosen = choose_face(faces, image.width, image.height)
            cached = (chosen.embedding if chosen else None, len(faces))
            cache.put(key, *cached, dimension)
        vectors[photo] = cached[0]
        several += cached[1] > 1
    cache.save(dimension)
    return Embeddings(vectors, several)


def choose_face(faces: list[face_engine.Face], width: int, height: int) -> face_engine.Face | None:
    """The face nearest the photo's centre: LFW photos are centred on the person they name."""

    def off_centre(face: face_engine.Face) -> float:
        left, top, right, bottom = face.box
        return ((left + right) / 2 - width / 2) ** 2 + ((top + bottom) / 2 - height / 2) ** 2

    return min(faces, key=off_centre, default=None)


def pair_distances(pairs: list[lfw.Pair], vectors: dict[Path, np.ndarray | None]) -> np.ndarray:
    """L2 distance of each pair; NO_FACE_DISTANCE where either photo has no face (a rejected pair)."""
    distances = []
    for pair in pairs:
        first, second = vectors[pair.first], vectors[pair.second]
        missing = first is None or second is None
        distances.append(NO_FACE_DISTANCE if missing else float(np.linalg.norm(first - second)))
    return np.array(distances)


def retrieval_through_milvus(vectors: dict[Path, np.ndarray | None], dimension: int) -> tuple[metrics.Retrieval, float]:
    """The seed's retrieval metrics and kNN accuracy, searching a scratch Milvus collection of every photo.

    1. Index every photo that has a face.
    2. Query with each photo of a person who has two or more, itself excluded from its results.
    3. Score the top RETRIEVAL_K for retrieval, and the labels of the top KNN_K for kNN.
    """
    photos = [photo for photo, vector in vectors.items() if vector is not None]
    people = [lfw.person_of(photo) for photo in photos]
    photo_counts = Counter(people)
    queries = [row for row, person in enumerate(people) if photo_counts[person] > 1]
    ranked_same, relevant, neighbour_labels = [], [], []
    with vector_store.scratch_collection(dimension) as collection:
        for start in range(0, len(photos), 1000):
            rows = range(start, min(start + 1000, len(photos)))
            vector_store.insert(
                [vector_store.FaceVector(row, vectors[photos[row]], row, "image") for row in rows], collection
            )
        for start in range(0, len(queries), 100):
            batch = queries[start : start + 100]
            results = vector_store.search_many(
                [vectors[photos[row]] for row in batch], RETRIEVAL_K + 1, collection=collection
            )
            for row, hits in zip(batch, results, strict=True):
                others = [people[hit.face_id] for hit in hits if hit.face_id != row][:RETRIEVAL_K]
                ranked_same.append([person == people[row] for person in others])
                relevant.append(photo_counts[people[row]] - 1)
                neighbour_labels.append(others[:KNN_K])
    knn = metrics.knn_accuracy(neighbour_labels, [people[row] for row in queries], KNN_K)
    return metrics.retrieval(ranked_same, relevant, RETRIEVAL_K), knn


def evaluate_model(model: str, pairs: list[lfw.Pair], skipped: int, cache_folder: Path) -> report.ModelRun:
    """Every figure of the report for one model."""
    started = time.monotonic()
    model_name = face_engine.model_name(model)
    photos = lfw.photos_of(pairs)
    embeddings = embed_photos(photos, model, cache_folder)
    distances = pair_distances(pairs, embeddings.vectors)
    same = np.array([pair.same for pair in pairs])
    verification = metrics.verify(distances, same, np.array([pair.fold for pair in pairs]))
    retrieval, knn = retrieval_through_milvus(embeddings.vectors, face_engine.dimension(model))
    published, source = PUBLISHED.get(model_name, (None, ""))
    run = report.ModelRun(
        model=model_name,
        published_accuracy=published,
        published_source=source,
        verification=verification,
        retrieval=retrieval,
        knn_accuracy=knn,
        knn_split=KNN_SPLIT,
        no_face=sum(vector is None for vector in embeddings.vectors.values()),
        several_faces=embeddings.several_faces,
        face_choice=FACE_CHOICE,
        skipped=skipped,
        photos=len(photos),
        pairs=len(pairs),
        seconds=time.monotonic() - started,
        distances=distances,
        same=same,
        calibration=metrics.fit_score_calibration(distances, same),
    )
    logger.info(
        "%s: accuracy %.4f ± %.4f, AUC %.4f, recall@1 %.4f in %.0f s",
        model_name, verification.accuracy, verification.std, verification.auc, retrieval.recall_at_1, run.seconds,
    )  # fmt: skip
    return run


def metrics_record(run: report.ModelRun) -> dict:
    """One model's figures as metrics.json holds them."""
    verification, retrieval = run.verification, run.retrieval
    return {
        "model": run.model,
        "data": {"photos": run.photos, "pairs": run.pairs, "skipped_photos": run.skipped},
        "verification": {
            "accuracy": verification.accuracy,
            "std": verification.std,
            "auc": verification.auc,
            "tar_at_far_1e-3": verification.tar_at_far_1e_3,
            "threshold": verification.threshold,
            "published_accuracy": run.published_accuracy,
        },
        "retrieval": {
            "queries": retrieval.queries,
            "top20_hit_portion": retrieval.top20_hit_portion,
            "recall_at_1": retrieval.recall_at_1,
            "recall_at_10": retrieval.recall_at_10,
            "map_at_20": retrieval.map_at_20,
        },
        "knn": {"accuracy": run.knn_accuracy, "k": KNN_K, "split": run.knn_split},
        "detection": {"no_face": run.no_face, "several_faces": run.several_faces, "face_choice": run.face_choice},
        "calibration": {"midpoint": run.calibration.midpoint, "slope": run.calibration.slope},
        "seconds": round(run.seconds, 1),
    }
