"""How a face model's distances become a "same person" call and a 0-100 score, from its latest calibration."""

import logging
import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from .models import Calibration

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreScale:
    """score = 100 x P(same person | distance), a logistic curve fitted on labelled pairs; threshold decides."""

    threshold: float
    midpoint: float
    slope: float
    source: str
    # Open-set identification: stricter than the pair threshold, which gives about half of the strangers a name.
    identification: float
    # The identification threshold measured against galleries of several sizes: (gallery faces, distance) points.
    curve: tuple[tuple[int, float], ...] = ()

    def identifies(self, distance: float) -> bool:
        """Whether a face this far from a known person's face may be given their name."""
        return distance < self.identification

    def identification_for(self, gallery_faces: int) -> float:
        """The identification threshold against this many known faces: a stranger is likelier near one of more faces,
        so a larger gallery needs a stricter one (the curve interpolated in log size, clamped at its ends)."""
        if not self.curve:
            return self.identification
        points = sorted(self.curve)
        sizes = [math.log(max(size, 1)) for size, _ in points]
        return float(np.interp(math.log(max(gallery_faces, 1)), sizes, [distance for _, distance in points]))

    def score(self, distance: float) -> float:
        exponent = min(self.slope * (distance - self.midpoint), 700.0)  # exp() overflows past about 709
        return round(100.0 / (1.0 + math.exp(exponent)), 1)

    def same_person(self, distance: float) -> bool:
        return distance < self.threshold


# The shipped calibrations, measured with `manage.py evaluate lfw` on LFW View 2 (all 6,000 pairs of the
# deep-funneled photos, 10-fold accuracy 0.9870 and 0.9865) on 2026-11-24; used until a user runs their own.
# identification: measured with `manage.py evaluate clusters` on an LFW open-set split (docs/people.md), rounded
# down so that strangers get a name at most 5% of the time; curve: the same against galleries of 10, 30, 100, 300
# and all 824 known people (their faces' number first), measured in the same run (float32 embeddings).
SHIPPED = {
    "facenet-20180408-casia-webface": ScoreScale(
        threshold=1.121,
        midpoint=1.122,
        slope=24.49,
        source="LFW View 2, 6,000 pairs (shipped default)",
        identification=0.876,
        curve=((18, 1.055), (57, 1.002), (186, 0.951), (551, 0.911), (1522, 0.876)),
    ),
    "dlib-resnet-v1": ScoreScale(
        threshold=0.431,
        midpoint=0.437,
        slope=48.03,
        source="LFW View 2, 6,000 pairs (shipped default)",
        identification=0.336,
        curve=((18, 0.408), (57, 0.386), (186, 0.366), (551, 0.351), (1522, 0.336)),
    ),
}


def for_model(model_name: str) -> ScoreScale:
    """The latest calibration stored for the model, else the shipped one, else REVSEARCH_MATCH_DISTANCE."""
    latest = Calibration.objects.filter(model_name=model_name).first()
    shipped = SHIPPED.get(model_name)
    if latest:
        # A calibration from before open-set identification was measured keeps the shipped identification and its
        # curve; one measured before the curve keeps its own threshold at every gallery size, not mixed with ours.
        identification = latest.identification_threshold or (shipped.identification if shipped else latest.threshold)
        points = latest.identification_curve or (
            shipped.curve if shipped and not latest.identification_threshold else ()
        )
        curve = tuple((int(faces), float(distance)) for faces, distance in points)
        return ScoreScale(latest.threshold, latest.midpoint, latest.slope, latest.source, identification, curve)
    if shipped:
        return shipped
    distance = settings.MATCH_DISTANCE
    return ScoreScale(distance, distance, 10.0, "REVSEARCH_MATCH_DISTANCE (no calibration for this model)", distance)
