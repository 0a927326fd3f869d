"""How well faces are grouped into people: our stable groups, DBSCAN and HDBSCAN on the same LFW embeddings.

Every photo of the LFW people with two or more photos is embedded once (the face nearest the centre, as in
`evaluate lfw`), then grouped by each method; photos where no face was found count as left out (a person of one).
The people with one photo are the strangers of the open-set measurement (openset.py), and are mixed in once to
see how many of them get grouped with somebody.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from sklearn.cluster import DBSCAN, HDBSCAN

from media_index import calibration, face_engine
from people import assignment, grouping

from . import arrival, cluster_metrics, lfw, openset, pipeline
from .cluster_metrics import ClusterScore

logger = logging.getLogger(__name__)

# The parameter sweep: radii around the identification threshold of the shipped model, and the smallest groups.
RADII = (0.80, 0.85, 0.88, 0.90, 0.95, 1.00, 1.05, 1.10)
MIN_FACES = (2, 3)
# HDBSCAN has no radius: its smallest cluster and its density estimate's neighbourhood (min_samples 2 and more
# take minutes each on LFW, so only one such point).
HDBSCAN_GRID = ((2, 1), (3, 1), (5, 1), (2, 2))
# The targets for our method.
TARGET_PRECISION, TARGET_RECALL = 0.97, 0.90


@dataclass(frozen=True)
class People:
    """LFW's photos by person: those with two or more are grouped, those with one are only strangers."""

    several: dict[str, list[Path]]
    single: list[Path]

    def photos(self) -> list[Path]:
        return [photo for photos in self.several.values() for photo in photos] + self.single


@dataclass(frozen=True)
class MethodRun:
    method: str
    parameters: dict
    score: ClusterScore
    seconds: float
    labels: np.ndarray = field(repr=False)


def lfw_people(data_dir: Path, limit: int | None = None) -> People:
    """Each person's photos, by folder; at most `limit` people with several photos, and as many with one."""
    several: dict[str, list[Path]] = {}
    single: list[Path] = []
    for folder in sorted(path for path in data_dir.iterdir() if path.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) > 1 and (limit is None or len(several) < limit):
            several[folder.name] = photos
        elif len(photos) == 1 and (limit is None or len(single) < limit):
            single.append(photos[0])
    if len(several) < 2:
        raise ValueError(f"{data_dir} holds fewer than two people with two or more photos: give the LFW folder")
    return People(several, single)


def vectors_by_person(vectors: dict[Path, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Each person's vectors (photos with a face only), as the open-set split takes them."""
    people: dict[str, list[np.ndarray]] = {}
    for photo, vector in vectors.items():
        if vector is not None:
            people.setdefault(lfw.person_of(photo), []).append(vector)
    return {name: np.stack(rows) for name, rows in people.items()}


def ours(vectors: np.ndarray, radius: float, min_faces: int) -> np.ndarray:
    return grouping.group(vectors, radius, min_faces)


def density_rule(vectors: np.ndarray, radius: float, min_faces: int) -> np.ndarray:
    """The plain density rule cut at one radius, which our method replaced (people/grouping.py)."""
    return grouping.density_groups(grouping.neighbours(vectors, radius), min_faces)


def dbscan(vectors: np.ndarray, radius: float, min_faces: int) -> np.ndarray:
    return DBSCAN(eps=radius, min_samples=min_faces, metric="euclidean").fit_predict(vectors)


def hdbscan(vectors: np.ndarray, min_cluster_size: int, min_samples: int) -> np.ndarray:
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, metric="euclidean").fit_predict(vectors)


def run(
    method: str, cluster: Callable[..., np.ndarray], vectors: np.ndarray, truth: np.ndarray, **parameters
) -> MethodRun:
    """Group the vectors and score the groups; truth covers every photo, vectors the first len(vectors) of them."""
    started = time.monotonic()
    labels = cluster(vectors, **parameters)
    seconds = time.monotonic() - started
    # Photos without a face come last in truth: nobody groups them.
    labels = np.concatenate([labels, np.full(len(truth) - len(vectors), cluster_metrics.NOISE)])
    return MethodRun(method, parameters, cluster_metrics.score(truth, labels), seconds, labels)


# The methods that share our parameters: a radius and the smallest group.
SAME_PARAMETERS = (("ours", ours), ("density rule", density_rule), ("DBSCAN", dbscan))


@dataclass(frozen=True)
class Evaluation:
    """Ours at the chosen parameters, DBSCAN and HDBSCAN at their best, and the sweeps behind them."""

    model: str
    people: int
    photos: int
    no_face: int
    radius: float
    min_faces: int
    radius_source: str
    methods: list[MethodRun]
    sweep: list[tuple[MethodRun, MethodRun, MethodRun]]  # ours, the density rule and DBSCAN at each point
    hdbscan_sweep: list[MethodRun]
    with_strangers: list[tuple[MethodRun, float]]  # with the one-photo people mixed in; the share of them grouped


def evaluate(
    model: str, people: People, vectors: dict[Path, np.ndarray | None], radius: float, min_faces: int,
    radius_source: str,
) -> Evaluation:  # fmt: skip
    """Every method on the photos of the people with several photos, at the given and the swept parameters.

    1. Photos with a face first, in person order, then those without (labelled -1 by every method).
    2. Our method at (radius, min_faces); it, the plain density rule and DBSCAN over RADII x MIN_FACES.
    3. HDBSCAN over HDBSCAN_GRID. DBSCAN and HDBSCAN stand in the main table at their best BCubed F.
    4. Ours over RADII and HDBSCAN at its best again, with the faces of the one-photo people mixed in.
    """
    several = people.several
    photos = [photo for person in several.values() for photo in person]
    with_face = [photo for photo in photos if vectors[photo] is not None]
    without = [photo for photo in photos if vectors[photo] is None]
    names = {name: number for number, name in enumerate(several)}
    truth = np.array([names[lfw.person_of(photo)] for photo in with_face + without])
    matrix = np.stack([vectors[photo] for photo in with_face]).astype(np.float32)
    sweep = [
        tuple(run(name, method, matrix, truth, radius=r, min_faces=m) for name, method in SAME_PARAMETERS)
        for m in MIN_FACES
        for r in RADII
    ]
    hdbscan_sweep = [
        run("HDBSCAN", hdbscan, matrix, truth, min_cluster_size=size, min_samples=samples)
        for size, samples in HDBSCAN_GRID
    ]
    dbscan_runs = [entry for point in sweep for entry in point if entry.method == "DBSCAN"]
    methods = [
        run("ours", ours, matrix, truth, radius=radius, min_faces=min_faces),
        max(dbscan_runs, key=lambda entry: entry.score.bcubed_f),
        max(hdbscan_sweep, key=lambda entry: entry.score.bcubed_f),
        # What indexing leaves before the full rebuild: its own rule, within the identification threshold.
        run(
            "ours, while indexing",
            arrival.assign_in_order,
            matrix,
            truth,
            radius=assignment.join_radius(model),
            min_faces=min_faces,
        ),  # fmt: skip
    ]
    for entry in methods:
        logger.info("%s %s: %s in %.1f s", entry.method, entry.parameters, entry.score, entry.seconds)
    strangers = [vectors[photo] for photo in people.single if vectors[photo] is not None]
    mixed = mix_strangers(matrix, truth, strangers, min_faces, methods[2].parameters)
    return Evaluation(
        model, len(several), len(photos), len(without), radius, min_faces, radius_source, methods, sweep, hdbscan_sweep,
        mixed,
    )  # fmt: skip


def mix_strangers(
    matrix: np.ndarray, truth: np.ndarray, strangers: list[np.ndarray], min_faces: int, hdbscan_parameters: dict
) -> list[tuple[MethodRun, float]]:
    """Our method over RADII and HDBSCAN, scored on everyone with the one-photo people's faces added.

    An archive holds many faces seen once: each should stay alone, and the share that joins a group is reported.
    """
    if not strangers:
        return []
    count = len(matrix)
    vectors = np.concatenate([matrix, np.stack(strangers).astype(np.float32)])
    ids = truth.max(initial=-1) + 1 + np.arange(len(strangers))
    everyone = np.concatenate([truth[:count], ids, truth[count:]])
    runs = [run("ours", ours, vectors, everyone, radius=r, min_faces=min_faces) for r in RADII]
    runs.append(run("HDBSCAN", hdbscan, vectors, everyone, **hdbscan_parameters))
    return [(entry, float(np.mean(entry.labels[count : len(vectors)] >= 0))) for entry in runs]


def best_meeting_targets(sweep: list[tuple[MethodRun, ...]]) -> MethodRun | None:
    """Our sweep's best BCubed F among the points at the precision target (meeting the recall target first).

    Ties go to the smaller radius and the fewer faces (the sweep's order): the result stops changing once the radius
    links every face a group needs.
    """
    meeting = [entry for entry, *_ in sweep if entry.score.bcubed_precision >= TARGET_PRECISION]
    return max(
        meeting, key=lambda entry: (entry.score.bcubed_recall >= TARGET_RECALL, entry.score.bcubed_f), default=None
    )


def method_record(entry: MethodRun) -> dict:
    return {"parameters": entry.parameters} | asdict(entry.score) | {"seconds": round(entry.seconds, 3)}


def strangers_record(mixed: list[tuple[MethodRun, float]]) -> list[dict]:
    return [{"method": entry.method} | method_record(entry) | {"strangers_grouped": share} for entry, share in mixed]


def metrics_record(evaluation: Evaluation) -> dict:
    """Every clustering figure as metrics.json holds them (open-set figures are added beside)."""
    best = best_meeting_targets(evaluation.sweep)
    return {
        "model": evaluation.model,
        "data": {"people": evaluation.people, "photos": evaluation.photos, "no_face": evaluation.no_face},
        "parameters": {
            "radius": round(evaluation.radius, 4),
            "min_faces": evaluation.min_faces,
            "radius_source": evaluation.radius_source,
        },
        "targets": {"bcubed_precision": TARGET_PRECISION, "bcubed_recall": TARGET_RECALL},
        "methods": {entry.method: method_record(entry) for entry in evaluation.methods},
        "sweep": [
            {"radius": point[0].parameters["radius"], "min_faces": point[0].parameters["min_faces"]}
            | {entry.method: method_record(entry) for entry in point}
            for point in evaluation.sweep
        ],
        "hdbscan_sweep": [method_record(entry) for entry in evaluation.hdbscan_sweep],
        "with_strangers": strangers_record(evaluation.with_strangers),
        "best_in_sweep": best.parameters if best else None,
    }


def pair_accuracy(data_dir: Path, vectors: dict[Path, np.ndarray | None], threshold: float) -> tuple[float, int]:
    """Verification accuracy of a pair threshold on the pairs.txt pairs whose photos were embedded, and their number."""
    pairs_file = data_dir / "pairs.txt"
    if not pairs_file.is_file():
        return 0.0, 0
    pairs = [
        pair for pair in lfw.read_pairs(data_dir, pairs_file)[0] if pair.first in vectors and pair.second in vectors
    ]
    if not pairs:
        return 0.0, 0
    same = np.array([pair.same for pair in pairs])
    return float(np.mean((pipeline.pair_distances(pairs, vectors) < threshold) == same)), len(pairs)


@dataclass(frozen=True)
class Measured:
    evaluation: Evaluation  # the first model's grouping
    open_sets: list[openset.OpenSet]  # each model's
    vectors: dict[str, dict[Path, np.ndarray | None]]  # each model's embeddings, by model name


def measure(people: People, models: list[str], cache: Path) -> Measured:
    """Each model's open-set threshold, and the first model's grouping at the settings' parameters.

    PEOPLE_CLUSTER_DISTANCE 0 takes the identification threshold measured here, as the product takes the calibrated
    one.
    """
    evaluation, open_sets, embedded = None, [], {}
    for model in models:
        model_name = face_engine.model_name(model)
        vectors = embedded[model_name] = pipeline.embed_photos(people.photos(), model, cache).vectors
        pair_threshold = calibration.for_model(model_name).threshold
        open_sets.append(openset.evaluate(model_name, vectors_by_person(vectors), pair_threshold))
        if evaluation is None:
            radius, source = settings.PEOPLE_CLUSTER_DISTANCE, "PEOPLE_CLUSTER_DISTANCE"
            if radius <= 0:
                radius, source = open_sets[0].at_identification.threshold, "the identification threshold measured here"
            evaluation = evaluate(model_name, people, vectors, radius, settings.PEOPLE_MIN_FACES, source)
    if evaluation is None:
        raise ValueError("no model to measure")
    return Measured(evaluation, open_sets, embedded)
