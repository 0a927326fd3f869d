"""Forgetting a person: every face of theirs is deleted (rows, crops, vectors), a template of their faces is kept
on the blocklist (people/blocklist.py drops matching faces at indexing), and an erasure report says what went.

Rows go in one transaction; vectors and crops once it commits (media_index/removal.py). Files, when the user asks,
are unlinked inside the transaction: if it then rolls back, the watcher finds the files gone and marks them missing.
"""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from media_index import inbox, removal, vector_store
from media_index.models import Asset, Face, Frame

from . import audit
from .models import ForgottenPerson, PeopleEvent, Person

logger = logging.getLogger(__name__)

# Faces whose vectors make the template: enough to cover poses and ages, few enough to compare every new face.
TEMPLATE_FACES = 64


def forget(person: Person, *, delete_files: bool = False, user=None) -> ForgottenPerson:
    """Erase the person: faces, crops, vectors, their row (and the files that held them, when asked), keeping only
    a template so they are never stored again; returns the ForgottenPerson holding the erasure report."""
    model_name, template = _template(person)
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        faces = list(Face.objects.filter(person=person).select_related("asset"))
        per_asset = Counter(face.asset_id for face in faces)
        assets = {face.asset_id: face.asset for face in faces}
        frame_ids = {face.frame_id for face in faces if face.frame_id}
        removal.delete_faces(faces)
        report = {
            "person": person.label,
            "person_id": person.pk,
            "faces_deleted": len(faces),
            "photos": sum(asset.kind == Asset.Kind.IMAGE for asset in assets.values()),
            "videos": sum(asset.kind == Asset.Kind.VIDEO for asset in assets.values()),
            "assets": [
                {"asset": pk, "path": asset.display_path, "kind": asset.kind, "faces": per_asset[pk]}
                for pk, asset in sorted(assets.items())
            ],
            "vectors_deleted": len(faces),
            "crops_deleted": sum(bool(face.crop) for face in faces),
            "frame_thumbnails_deleted": _clear_faceless_frames(frame_ids),
            "template_faces": len(template),
            "when": timezone.now().isoformat(),
            "by": user.get_username() if user is not None and getattr(user, "pk", None) else None,
        }
        report |= _delete_files(list(assets.values())) if delete_files else {"files_deleted": 0, "files_kept": []}
        forgotten = ForgottenPerson.objects.create(
            label=person.label,
            # No vector found: the template matches no model, so the blocklist never loads an empty template.
            model_name=model_name if len(template) else "",
            dimension=template.shape[1] if len(template) else 0,
            template=template.tobytes(),
            faces_deleted=len(faces),
            report=report,
            forgotten_by=user if user is not None and getattr(user, "pk", None) else None,
        )
        audit.record(PeopleEvent.Action.FORGET, person, user, report)
        person.delete()
    logger.info(
        "person %s forgotten: %d faces in %d photos and %d videos, %d files deleted",
        forgotten.pk, len(faces), report["photos"], report["videos"], report["files_deleted"],
    )  # fmt: skip
    return forgotten


def _template(person: Person) -> tuple[str, np.ndarray]:
    """Up to TEMPLATE_FACES unit vectors of the person's faces of their most common model, spread over their photos
    and video tracks (the clearest face of each first), as a float32 array of rows."""
    faces = list(
        Face.objects.filter(person=person)
        .order_by("-probability", "pk")
        .values("pk", "model_name", "asset_id", "track")
    )
    if not faces:
        return "", np.zeros((0, 0), dtype=np.float32)
    model_name = Counter(face["model_name"] for face in faces).most_common(1)[0][0]
    # One round takes the clearest face left of each photo or track, so no long video fills the template alone.
    rounds: dict[tuple, int] = Counter()
    ranked: list[tuple[int, int, int]] = []
    for face in faces:
        if face["model_name"] == model_name:
            group = ("track", face["track"]) if face["track"] else ("asset", face["asset_id"])
            ranked.append((rounds[group], len(ranked), face["pk"]))
            rounds[group] += 1
    chosen = [pk for _, _, pk in sorted(ranked)[: TEMPLATE_FACES * 2]]
    vectors = vector_store.vectors_of(chosen)
    rows = [vectors[pk] for pk in chosen if pk in vectors][:TEMPLATE_FACES]
    if not rows:
        logger.warning("person %s: no stored vector of their faces; the blocklist gets no template", person.pk)
        return model_name, np.zeros((0, 0), dtype=np.float32)
    template = np.asarray(rows, dtype=np.float32)
    template /= np.maximum(np.linalg.norm(template, axis=1, keepdims=True), 1e-12)
    return model_name, template


def _clear_faceless_frames(frame_ids: set[int]) -> int:
    """Frames left with no face stay, without the thumbnail that showed the person (deleted once this commits)."""
    frames = Frame.objects.filter(pk__in=frame_ids, faces__isnull=True).exclude(thumbnail="")
    names = list(frames.values_list("thumbnail", flat=True))
    Frame.objects.filter(pk__in=frames.values("pk")).update(thumbnail="")
    transaction.on_commit(lambda: _delete_stored(names), robust=True)
    return len(names)


def _delete_stored(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _delete_files(assets: list[Asset]) -> dict:
    """Delete the photos and videos that held the person, and their identical copies, with their rows; only files
    inside the inbox, reached without following any link."""
    copies = list(Asset.objects.filter(duplicate_of__in=[asset.pk for asset in assets]))
    deleted, kept, other_faces = [], [], 0
    # Copies first: deleting an original lets a copy still on disk take its place (media_index/signals.py).
    for asset in copies + assets:
        if asset.kind == Asset.Kind.OTHER:
            reason = "not a photo or video"
        else:
            reason = inbox.unlink_inside(Path(asset.path), settings.INBOX_DIR)
        if reason:
            kept.append({"path": asset.display_path, "reason": reason})
            continue
        logger.info("deleted %s, which held a forgotten person", asset.path)
        other_faces += asset.faces.count()
        asset.delete()  # its other faces, frames, vectors and files go too (media_index/signals.py)
        deleted.append(asset)
    return {
        "files_deleted": len(deleted),
        "files": [asset.display_path for asset in deleted],
        "files_kept": kept,
        "other_faces_deleted": other_faces,
    }
