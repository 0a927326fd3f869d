"""Open-set identification on LFW: how close a stranger's face comes to somebody known, and the threshold from it.

Naming a face is open-set: the face may belong to nobody in the archive. The pair threshold answers "are these two
photos one person" at equal error costs, and gives about half of the strangers somebody's name when each is
compared with a whole gallery. So the identification threshold is measured on its own:

1. Of the people with two or more photos, half (drawn at random, SPLITS times over) are known: up to
   GALLERY_FACES of their photos form the gallery, the rest are probes that should get their name.
2. The other half, and every person with one photo, are strangers: none of their faces is in the gallery.
3. The threshold is the distance that a stranger's nearest gallery face is below at most FALSE_MATCH of the time,
   pooled over the splits; a known probe is identified when its nearest gallery face is its own person, below it.
4. The more faces a gallery holds, the likelier a stranger is near one: the same threshold is measured against
   galleries of LADDER known people drawn from each split's known half (the same strangers), a curve of
   (gallery faces, threshold) that the product reads for the size of its own gallery.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from media_index import calibration
from media_index.models import Calibration

logger = logging.getLogger(__name__)

FALSE_MATCH = 0.05
GALLERY_FACES = 3
SPLITS = 10
SEED = 16
# Known people in the smaller galleries of the curve; the whole known half is its last point.
LADDER = (10, 30, 100, 300)
# A small gallery is drawn several times a split, up to about this many known people in all (a steadier point).
LADDER_PEOPLE = 100


@dataclass(frozen=True)
class Rates:
    """At one threshold: shares of stranger probes given a name, and of known probes named right or wrong."""

    threshold: float
    stranger_named: float
    known_identified: float
    known_misnamed: float


@dataclass(frozen=True)
class CurvePoint:
    """The identification threshold against galleries of `known_people` (`gallery_faces` faces, a mean)."""

    known_people: int
    gallery_faces: int
    galleries: int  # how many were drawn
    at: Rates
    threshold_std: float  # spread of the per-gallery thresholds


@dataclass(frozen=True)
class OpenSet:
    """The measured identification threshold, and what it and the pair threshold do on the same probes."""

    model: str
    at_identification: Rates
    at_pair: Rates
    threshold_std: float  # spread of the per-split thresholds
    rank_1: float  # known probes whose nearest gallery face is their own person, at any distance
    # Per split (a mean over the splits where they differ).
    known_people: int
    gallery_faces: int
    known_probes: int
    stranger_probes: int
    splits: int
    curve: tuple[CurvePoint, ...] = ()  # by gallery size, the last one the whole known half's


@dataclass
class _Draw:
    """One split: the gallery faces and known probes with each one's person (a number), and the stranger probes."""

    gallery: np.ndarray
    owners: np.ndarray
    probes: np.ndarray
    probe_owners: np.ndarray
    strangers: np.ndarray


@dataclass
class _Trial:
    """One split's nearest gallery distances and whether the nearest face was the probe's own person."""

    stranger: np.ndarray
    known: np.ndarray
    known_right: np.ndarray
    gallery_faces: int
    known_people: int


def nearest(probes: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each probe, the index of its nearest gallery vector and the L2 distance to it."""
    squared = (probes * probes).sum(1)[:, None] + (gallery * gallery).sum(1)[None, :] - 2.0 * probes @ gallery.T
    index = np.argmin(squared, axis=1)
    distance = np.sqrt(np.maximum(squared[np.arange(len(probes)), index], 0.0))
    return index, distance


def threshold_for(stranger_distances: np.ndarray, false_match: float = FALSE_MATCH) -> float:
    """The largest threshold from the distances that names at most `false_match` of the strangers (distance < it)."""
    ordered = np.sort(np.asarray(stranger_distances, dtype=np.float64))
    if len(ordered) == 0:
        raise ValueError("no stranger probe: give people with one photo, or more people with several")
    return float(ordered[int(np.floor(false_match * len(ordered)))])


def split(people: dict[str, np.ndarray], rng: np.random.Generator) -> _Draw:
    """One draw of known people, their gallery and probes, and the strangers.

    people: each person's vectors (one row per photo with a face); those with one row are always strangers.
    """
    several = sorted(name for name, vectors in people.items() if len(vectors) > 1)
    known = set(rng.permutation(several)[: len(several) // 2].tolist())
    if not known:
        raise ValueError("need at least two people with two or more photos, to know one of them")
    gallery, owners, probes, probe_owners, strangers = [], [], [], [], []
    for number, name in enumerate(sorted(people)):
        vectors = people[name]
        if name not in known:
            strangers.append(vectors)
            continue
        order = rng.permutation(len(vectors))
        size = min(GALLERY_FACES, len(vectors) - 1)
        gallery.append(vectors[order[:size]])
        owners.extend([number] * size)
        probes.append(vectors[order[size:]])
        probe_owners.extend([number] * (len(vectors) - size))
    return _Draw(
        np.concatenate(gallery), np.array(owners), np.concatenate(probes), np.array(probe_owners),
        np.concatenate(strangers),
    )  # fmt: skip


def trial_of(draw: _Draw, known: np.ndarray | None = None) -> _Trial:
    """Each probe's nearest distance in the draw's gallery, or in the part of it of the `known` people (numbers)."""
    in_gallery = np.ones(len(draw.owners), bool) if known is None else np.isin(draw.owners, known)
    probed = np.ones(len(draw.probe_owners), bool) if known is None else np.isin(draw.probe_owners, known)
    gallery, owners = draw.gallery[in_gallery], draw.owners[in_gallery]
    _, stranger_distances = nearest(draw.strangers, gallery)
    index, known_distances = nearest(draw.probes[probed], gallery)
    right = owners[index] == draw.probe_owners[probed]
    return _Trial(stranger_distances, known_distances, right, len(owners), len(np.unique(owners)))


def curve(draws: list[_Draw], everyone: list[_Trial]) -> tuple[CurvePoint, ...]:
    """The threshold against galleries of LADDER known people drawn from each split's, and against all of them."""
    rng = np.random.default_rng(SEED + 1)  # a stream of its own: the splits stay those of the threshold before
    points = []
    for size in [size for size in LADDER if size < everyone[0].known_people]:
        trials = [
            trial_of(draw, rng.choice(np.unique(draw.owners), size, replace=False))
            for draw in draws
            for _ in range(max(1, LADDER_PEOPLE // size))
        ]
        points.append(_point(trials))
    return (*points, _point(everyone))


def _point(trials: list[_Trial]) -> CurvePoint:
    threshold = threshold_for(np.concatenate([trial.stranger for trial in trials]))
    return CurvePoint(
        known_people=trials[0].known_people,
        gallery_faces=round(np.mean([trial.gallery_faces for trial in trials])),
        galleries=len(trials),
        at=rates(trials, threshold),
        threshold_std=float(np.std([threshold_for(trial.stranger) for trial in trials])),
    )


def rates(trials: list[_Trial], threshold: float) -> Rates:
    stranger = np.concatenate([trial.stranger for trial in trials])
    known = np.concatenate([trial.known for trial in trials])
    right = np.concatenate([trial.known_right for trial in trials])
    return Rates(
        threshold=threshold,
        stranger_named=float(np.mean(stranger < threshold)),
        known_identified=float(np.mean((known < threshold) & right)),
        known_misnamed=float(np.mean((known < threshold) & ~right)),
    )


def evaluate(model: str, people: dict[str, np.ndarray], pair_threshold: float, splits: int = SPLITS) -> OpenSet:
    """The identification threshold of one model's vectors, with its rates and the pair threshold's, for contrast."""
    rng = np.random.default_rng(SEED)
    draws = [split(people, rng) for _ in range(splits)]
    trials = [trial_of(draw) for draw in draws]
    threshold = threshold_for(np.concatenate([trial.stranger for trial in trials]))
    result = OpenSet(
        model=model,
        at_identification=rates(trials, threshold),
        at_pair=rates(trials, pair_threshold),
        threshold_std=float(np.std([threshold_for(trial.stranger) for trial in trials])),
        rank_1=float(np.mean(np.concatenate([trial.known_right for trial in trials]))),
        known_people=trials[0].known_people,
        gallery_faces=round(np.mean([trial.gallery_faces for trial in trials])),
        known_probes=round(np.mean([len(trial.known) for trial in trials])),
        stranger_probes=round(np.mean([len(trial.stranger) for trial in trials])),
        splits=splits,
        curve=curve(draws, trials),
    )
    logger.info(
        "%s: identification threshold %.3f (strangers named %.3f, known identified %.3f); at the pair threshold"
        " %.3f strangers named %.3f; by gallery faces %s",
        model, threshold, result.at_identification.stranger_named, result.at_identification.known_identified,
        pair_threshold, result.at_pair.stranger_named, stored_curve(result),
    )  # fmt: skip
    return result


def stored_curve(result: OpenSet) -> list[list]:
    """The curve as Calibration.identification_curve keeps it: [gallery faces, threshold] points, smallest first."""
    return [[point.gallery_faces, round(point.at.threshold, 4)] for point in result.curve]


def record(result: OpenSet) -> dict:
    """One model's open-set figures as metrics.json holds them."""

    def at(rates: Rates) -> dict:
        return {
            "threshold": round(rates.threshold, 4),
            "strangers_named": rates.stranger_named,
            "known_identified": rates.known_identified,
            "known_misnamed": rates.known_misnamed,
        }

    return {
        "model": result.model,
        "identification_threshold": round(result.at_identification.threshold, 4),
        "threshold_std_over_splits": result.threshold_std,
        "at_identification_threshold": at(result.at_identification),
        "at_pair_threshold": at(result.at_pair),
        "rank_1": result.rank_1,
        "by_gallery_size": [
            {
                "known_people": point.known_people,
                "gallery_faces": point.gallery_faces,
                "galleries": point.galleries,
                "threshold_std": point.threshold_std,
                **at(point.at),
            }
            for point in result.curve
        ],
        "split": {
            "splits": result.splits,
            "known_people": result.known_people,
            "gallery_faces": result.gallery_faces,
            "known_probes": result.known_probes,
            "stranger_probes": result.stranger_probes,
            "gallery_faces_per_person": GALLERY_FACES,
            "false_match_target": FALSE_MATCH,
        },
    }


def store(result: OpenSet, pair_accuracy: Callable[[float], tuple[float, int]]) -> Calibration:
    """The threshold on the model's latest calibration, else on a new one that copies the pair values in use.

    pair_accuracy: the verification accuracy of a pair threshold and the number of pairs it was measured on, for
    the new row (the shipped values carry none).
    """
    threshold, points = result.at_identification.threshold, stored_curve(result)
    latest = Calibration.objects.filter(model_name=result.model).first()
    if latest:
        latest.identification_threshold, latest.identification_curve = threshold, points
        latest.save(update_fields=["identification_threshold", "identification_curve"])
        return latest
    scale = calibration.for_model(result.model)
    accuracy, pairs = pair_accuracy(scale.threshold)
    return Calibration.objects.create(
        model_name=result.model,
        threshold=scale.threshold,
        midpoint=scale.midpoint,
        slope=scale.slope,
        accuracy=accuracy,
        pairs=pairs,
        identification_threshold=threshold,
        identification_curve=points,
        source=f"{scale.source[:120]}; identification: LFW open set",
    )
