"""People: the people pages as JSON. Reading lists people and one person's photos and moments; every change (rename,
hide, merge, move faces, review answers, forget) goes through people/actions.py, so it is audited as the token's user.
"""

import logging
from typing import Annotated, Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Path, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, Field

from media_index.models import Face
from people import actions, listing, pages, queries, review
from people.models import ForgottenPerson, Person

from . import links, paging
from .auth import WRITE

logger = logging.getLogger(__name__)

router = Router(tags=["people"])

# Faces one request may move or answer about: every face of a large person, with room to spare.
MAX_FACES = 10_000
# Ids are 64-bit: a larger number is no row's, and SQLite cannot even compare it.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class PersonRow(Schema):
    """One person of the list: counts of their faces, photos and video moments, the newest date, the cover."""

    id: int
    name: str
    label: str
    hidden: bool
    faces: int
    photos: int
    moments: int
    latest: str | None
    cover_face: int | None
    url: str
    cover: str | None


class PeoplePage(Schema):
    count: int
    page: int
    per_page: int
    pages: int
    items: list[PersonRow]


class PersonOut(Schema):
    id: int
    name: str
    label: str
    hidden: bool
    faces: int
    cover_face: int | None
    cover: str | None
    url: str


class PhotoOut(Schema):
    asset: int
    path: str
    date: str
    face: int
    box: list[float]
    url: str


class MomentOut(Schema):
    asset: int
    path: str
    start: float
    end: float
    date: str
    face: int
    url: str


class PersonDetail(PersonOut):
    photos: list[PhotoOut]
    moments: list[MomentOut]


class ForgottenOut(Schema):
    forgotten: int
    report: dict[str, Any]


class MovedOut(Schema):
    moved: int
    person: PersonOut | None


class ReviewedOut(Schema):
    faces: int
    person: PersonOut | None


class _Body(Schema):
    # A misspelt field must not be dropped quietly: {"hiden": true} would change nothing and answer 200.
    model_config = ConfigDict(extra="forbid")


class PersonChange(_Body):
    name: str | None = None
    hidden: bool | None = None


class MergeIn(_Body):
    into: Id


class MoveIn(_Body):
    faces: list[Id] = Field(min_length=1, max_length=MAX_FACES)
    to: Id | None  # required, so that leaving it out never takes faces out by accident


class ForgetIn(_Body):
    delete_files: bool = False


class ReviewIn(_Body):
    faces: list[Id] = Field(min_length=1, max_length=MAX_FACES)
    decision: Literal["confirm", "reject"]


@router.get("", response=PeoplePage, summary="People: named ones by name, then unnamed ones by face count")
def list_people(
    request: HttpRequest,
    hidden: bool = False,
    name: str | None = None,
    page: int = 1,
    per_page: int = paging.PER_PAGE,
):
    """As the people page lists them: hidden people only with `hidden=true`. `name` finds the named people whose
    name holds it (case aside), hidden ones too, as the people page's search box does."""
    people = queries.people_summary(include_hidden=hidden or name is not None)
    if name is not None:
        if not name.strip() or len(name) > actions.NAME_MAX_CHARS:
            raise HttpError(400, f"name must hold 1 to {actions.NAME_MAX_CHARS} characters; leave it out to list all.")
        people = people.filter(pk__in=pages.matching_people(name).values("pk"))
    return paging.page_of(people, page, per_page, _row)


@router.get("/forgotten/{forgotten_id}", response=ForgottenOut, summary="The erasure report of a forgotten person")
def forgotten(request: HttpRequest, forgotten_id: Path[Id]):
    record = ForgottenPerson.objects.filter(pk=forgotten_id).first()
    if record is None:
        raise HttpError(404, f"No forgotten person has the id {forgotten_id}.")
    return {"forgotten": record.pk, "report": record.report}


@router.get("/{person_id}", response=PersonDetail, summary="A person with their photos and video moments")
def person_detail(request: HttpRequest, person_id: Path[Id]):
    """Photos and moments oldest first (when taken, else the file's time); each `url` opens it on the site, a
    moment at its start."""
    person = _person(person_id)
    found = listing.appearances_record(queries.person_appearances(person))
    photos = [photo | {"url": links.asset_page(photo["asset"])} for photo in found["photos"]]
    moments = [moment | {"url": links.asset_page(moment["asset"], moment["start"])} for moment in found["moments"]]
    return _short(person) | {"photos": photos, "moments": moments}


@router.patch("/{person_id}", auth=WRITE, response=PersonOut, summary="Rename a person, hide or show them")
def change_person(request: HttpRequest, person_id: Path[Id], body: PersonChange):
    """`name` names them (an empty one makes them unnamed again); `hidden` leaves them off the people page or
    shows them again. Both go together or not at all."""
    person = _person(person_id)
    if body.name is None and body.hidden is None:
        raise HttpError(400, "Give `name`, `hidden` or both.")
    with transaction.atomic():
        if body.name is not None:
            try:
                actions.rename(person, body.name, user=request.user)
            except ValueError as error:
                raise HttpError(400, str(error)) from None
        if body.hidden is not None:
            actions.set_hidden(person, body.hidden, user=request.user)
    return _short(person)


@router.post("/{person_id}/merge", auth=WRITE, response=PersonOut, summary="Merge a person into another")
def merge(request: HttpRequest, person_id: Path[Id], body: MergeIn):
    """The user says they are one person: this person's faces and answers go to `into`, and this person is
    deleted. The answer is the person merged into."""
    person = _person(person_id)
    if body.into == person.pk:
        raise HttpError(400, "A person cannot be merged into themselves: give another person's id in `into`.")
    target = actions.merge(person, _person(body.into), user=request.user)
    return _short(target)


@router.post("/{person_id}/faces/move", auth=WRITE, response=MovedOut, summary="Move faces to another person, or out")
def move_faces(request: HttpRequest, person_id: Path[Id], body: MoveIn):
    """The person's `faces` (each with their other faces of its photo or video track) go to person `to`, or with
    `to` null out of the person ("not this person"). `person` is null when this left them unnamed without a face
    and they were deleted."""
    person = _person(person_id)
    if body.to == person.pk:
        raise HttpError(400, f"They are {person.label}'s faces already: give another person in `to`, or null.")
    target = _person(body.to) if body.to is not None else None
    try:
        face_ids = pages.own_faces(person, body.faces)
    except Face.DoesNotExist as error:
        raise HttpError(404, str(error)) from None
    except pages.NotTheirs as error:
        raise HttpError(400, str(error)) from None
    moved = actions.move_faces(face_ids, target, user=request.user)
    return {"moved": moved, "person": _short_if_kept(person)}


@router.post("/{person_id}/review", auth=WRITE, response=ReviewedOut, summary="Answer the review queue")
def answer_review(request: HttpRequest, person_id: Path[Id], body: ReviewIn):
    """ "Is this <name>?" for many faces at once: confirm pins them to the person, reject never suggests them again
    (and takes them out if theirs). `faces` counts the faces confirmed anew, or those rejected; `person` is null
    when a rejection left them unnamed without a face and they were deleted."""
    person = _person(person_id)
    try:
        face_ids = review.decidable(person, body.faces)
    except Face.DoesNotExist as error:
        raise HttpError(404, str(error)) from None
    except review.NotDecidable as error:
        raise HttpError(400, str(error)) from None
    decide = actions.confirm if body.decision == "confirm" else actions.reject
    count = decide(person, face_ids, user=request.user)
    return {"faces": count, "person": _short_if_kept(person)}


@router.post("/{person_id}/forget", auth=WRITE, response=ForgottenOut, summary="Forget a person (erasure on request)")
def forget(request: HttpRequest, person_id: Path[Id], body: ForgetIn):
    """Deletes every face of theirs (rows, crops, vectors) and the person, keeping only a template so they are
    never stored again; `delete_files` deletes the photos and videos they are in too (inside the inbox only), and
    `{}` keeps them. The answer holds the erasure report, kept at GET /people/forgotten/{id}."""
    person = _person(person_id)
    record = actions.forget(person, delete_files=body.delete_files, user=request.user)
    return {"forgotten": record.pk, "report": record.report}


def _person(person_id: int) -> Person:
    person = Person.objects.filter(pk=person_id).first()
    if person is None:
        raise HttpError(404, f"No person has the id {person_id}: GET /people lists them.")
    return person


def _short(person: Person) -> dict:
    """The person without their photos and moments; the cover is the face chosen, else their clearest."""
    cover = pages.cover_face(person)
    return {
        "id": person.pk,
        "name": person.name,
        "label": person.label,
        "hidden": person.hidden,
        "faces": person.faces.count(),
        "cover_face": cover.pk if cover else None,
        "cover": links.media(cover.crop) if cover else None,
        "url": person.get_absolute_url(),
    }


def _short_if_kept(person: Person) -> dict | None:
    """The person after a change that deletes a person it leaves unnamed without a face; None when it did."""
    kept = Person.objects.filter(pk=person.pk).first()
    return _short(kept) if kept is not None else None


def _row(person: Person) -> dict:
    """A row of people_summary(), with links to the person's page and their cover crop (a stored name there)."""
    return listing.summary_record(person) | {
        "url": person.get_absolute_url(),
        "cover": links.media(getattr(person, "cover_crop", None)),
    }
