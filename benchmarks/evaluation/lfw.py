"""LFW's protocol files: pairs (with their folds) and where each named photo lives."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

from .metrics import assign_folds

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    first: Path
    second: Path
    same: bool
    fold: int


def photo_path(data_dir: Path, name: str, number: str) -> Path:
    """`<Name>/<Name>_<nnnn>.jpg`, as every LFW protocol file counts photos from 1."""
    return data_dir / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(data_dir: Path, pairs_file: Path) -> tuple[list[Pair], list[Path]]:
    """The pairs whose photos are both present, and the photos the file names but the folder lacks.

    1. The first line is `folds<TAB>pairs per class` (View 2) or a single count (View 1, no folds).
    2. A line of three fields is a same-person pair, four fields a different-person pair.
    3. With folds, each fold holds its same-person lines, then its different-person lines; without, the
       pairs are split into 10 folds (keeping each fold's same/different balance).
    """
    lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{pairs_file} is empty")
    header, rows = lines[0], lines[1:]
    parsed: list[tuple[Path, Path, bool]] = []
    for number, fields in enumerate(rows, start=2):
        if len(fields) == 3:
            name, first, second = fields
            parsed.append((photo_path(data_dir, name, first), photo_path(data_dir, name, second), True))
        elif len(fields) == 4:
            name1, first, name2, second = fields
            parsed.append((photo_path(data_dir, name1, first), photo_path(data_dir, name2, second), False))
        else:
            raise ValueError(f"{pairs_file}:{number}: expected 3 or 4 fields, found {len(fields)}")
    if len(header) == 2:
        per_fold = 2 * int(header[1])
        folds = np.arange(len(parsed)) // per_fold
    else:
        folds = assign_folds(len(parsed))
    missing = sorted({path for first, second, _ in parsed for path in (first, second) if not path.is_file()})
    for path in missing:
        logger.warning("%s names %s, which is not in %s: its pairs are skipped", pairs_file.name, path, data_dir)
    absent = set(missing)
    pairs = [
        Pair(first, second, same, int(fold))
        for (first, second, same), fold in zip(parsed, folds, strict=True)
        if first not in absent and second not in absent
    ]
    return pairs, missing


def limit_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most `limit` pairs, taken in turn from each fold's same and different pairs so the slice stays balanced."""
    if limit is None or limit >= len(pairs):
        return pairs
    groups: dict[tuple[int, bool], list[Pair]] = {}
    for pair in pairs:
        groups.setdefault((pair.fold, pair.same), []).append(pair)
    in_turn = (pair for layer in zip_longest(*groups.values()) for pair in layer if pair is not None)
    chosen = set(list(in_turn)[:limit])
    return [pair for pair in pairs if pair in chosen]


def photos_of(pairs: Iterable[Pair]) -> list[Path]:
    """Every photo the pairs use, once, in a stable order."""
    return sorted({path for pair in pairs for path in (pair.first, pair.second)})


def person_of(photo: Path) -> str:
    return photo.parent.name
