"""The blocklist of forgotten people: a face that matches one of their templates is dropped before it is stored."""

import logging

import numpy as np
from django.db.models import F

from media_index import calibration

from .models import ForgottenPerson

logger = logging.getLogger(__name__)


def forgotten_mask(vectors: list[np.ndarray], model_name: str) -> list[bool]:
    """For each vector, whether it is a forgotten person's face (within the identification threshold of one of
    their template's faces); the count of dropped faces is added to each person matched."""
    if not vectors:
        return []
    forgotten = list(ForgottenPerson.objects.filter(model_name=model_name, dimension__gt=0))
    if not forgotten:
        return [False] * len(vectors)
    radius = calibration.for_model(model_name).identification
    stacked = np.asarray(vectors, dtype=np.float32)
    dropped = np.zeros(len(vectors), dtype=bool)
    for person in forgotten:
        template = person.vectors()
        distances = np.sqrt(np.maximum(2.0 - 2.0 * stacked @ template.T, 0.0)).min(axis=1)
        matched = (distances < radius) & ~dropped
        if matched.any():
            ForgottenPerson.objects.filter(pk=person.pk).update(faces_dropped=F("faces_dropped") + int(matched.sum()))
            logger.info("%d faces of forgotten person %s dropped, not stored", matched.sum(), person.pk)
            dropped |= matched
    return dropped.tolist()
