"""The people pages: everyone found, one person's photos and moments with the changes users make, the review queue,
finding someone by name, and adding a face the detector missed. Every change is a POST to one action."""

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from media_index.models import Asset, Face
from media_index.vector_store import VectorStoreUnavailable

from . import actions, manual_faces, pages, queries, review
from .forms import (
    AddFaceForm,
    CoverForm,
    ForgetForm,
    HideForm,
    MergeForm,
    MoveForm,
    NameSearchForm,
    RenameForm,
    ReviewForm,
    parse_id,
)
from .models import ForgottenPerson, Person

logger = logging.getLogger(__name__)

# People per page of the grid, and photos and moments per page of a person: pages stay fast however many there are.
PEOPLE_PER_PAGE = 120
TILES_PER_PAGE = 200
# People a name search lists before it asks for more of the name.
FOUND_LISTED = 100


@require_GET
def people_list(request):
    show_hidden = request.GET.get("hidden") == "1"
    people = Paginator(queries.people_summary(include_hidden=show_hidden), PEOPLE_PER_PAGE)
    context = {
        "page": people.get_page(request.GET.get("page")),
        "show_hidden": show_hidden,
        "hidden_count": Person.objects.filter(hidden=True).count(),
    }
    return render(request, "people/list.html", context)


@require_GET
def person_detail(request, person_id: int):
    return _person_page(request, get_object_or_404(Person, pk=person_id))


def _person_page(request, person: Person, status: int = 200, **forms):
    """The person's page, with a form that did not pass (and its errors) in place of the empty one."""
    tiles = Paginator(pages.timeline(person), TILES_PER_PAGE)
    context = {
        "person": person,
        "cover": pages.cover_face(person),
        "tiles": tiles.get_page(request.GET.get("page")),
        "photos": sum(not tile.is_moment for tile in tiles.object_list),
        "moments": sum(tile.is_moment for tile in tiles.object_list),
        "rename": RenameForm(initial={"name": person.name}),
        "merge": MergeForm(person=person),
        "move": MoveForm(),
    }
    return render(request, "people/person.html", context | forms, status=status)


def _after_change(person: Person, elsewhere: Person | None = None):
    """Back to the person's page, or, when the change left them without a face and deleted them, on."""
    if Person.objects.filter(pk=person.pk).exists():
        return redirect(person)
    return redirect(elsewhere) if elsewhere is not None else redirect("people:list")


@require_POST
def rename(request, person_id: int):
    person = get_object_or_404(Person, pk=person_id)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            actions.rename(person, form.cleaned_data["name"], user=request.user)
        except ValueError as error:
            form.add_error("name", str(error))
        else:
            person.refresh_from_db()
            messages.success(request, f"Renamed to {person.label}.")
            return redirect(person)
    return _person_page(request, person, 400, rename=form)


@require_POST
def merge(request, person_id: int):
    person = get_object_or_404(Person, pk=person_id)
    form = MergeForm(request.POST, person=person)
    if not form.is_valid():
        return _person_page(request, person, 400, merge=form)
    label = person.label
    target = actions.merge(person, form.cleaned_data["target"], user=request.user)
    messages.success(request, f"{label} merged into {target.label}.")
    return redirect(target)


@require_POST
def move(request, person_id: int):
    """Move the chosen faces to another person, or out of this one ("not this person")."""
    person = get_object_or_404(Person, pk=person_id)
    form = MoveForm(request.POST)
    if form.is_valid():
        target, out = form.cleaned_data["target"], form.cleaned_data["out"]
        try:
            face_ids = pages.own_faces(person, form.cleaned_data["faces"])
        except Face.DoesNotExist as error:
            raise Http404(str(error)) from None
        except pages.NotTheirs as error:
            form.add_error("faces", str(error))
        else:
            if not out and target.pk == person.pk:
                form.add_error("target", f"They are {person.label}'s faces already: choose another person.")
            else:
                moved = actions.move_faces(face_ids, None if out else target, user=request.user)
                where = f"out of {person.label}" if out else f"to {target.label}"
                messages.success(request, f"{moved} face{'s' if moved != 1 else ''} moved {where}.")
                return _after_change(person, None if out else target)
    return _person_page(request, person, 400, move=form)


@require_POST
def cover(request, person_id: int):
    person = get_object_or_404(Person, pk=person_id)
    form = CoverForm(request.POST)
    if not form.is_valid() or form.cleaned_data["cover"] is None:
        messages.error(request, "Choose one of their faces for the cover.")
        return _person_page(request, person, 400)
    face = get_object_or_404(Face, pk=form.cleaned_data["cover"])
    try:
        actions.set_cover(person, face.pk, user=request.user)
    except ValueError as error:
        messages.error(request, str(error))
        return _person_page(request, person, 400)
    messages.success(request, "Cover chosen.")
    return redirect(person)


@require_POST
def hide(request, person_id: int):
    person = get_object_or_404(Person, pk=person_id)
    form = HideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say whether to hide or show them.")
        return _person_page(request, person, 400)
    actions.set_hidden(person, form.cleaned_data["hidden"], user=request.user)
    if form.cleaned_data["hidden"]:
        messages.success(request, f"{person.label} is hidden from the people page (shown with “show hidden”).")
    else:
        messages.success(request, f"{person.label} is shown on the people page again.")
    return redirect(person)


@require_http_methods(["GET", "POST"])
def forget(request, person_id: int):
    """Ask first, saying what will be deleted; then forget them and show the erasure report."""
    person = get_object_or_404(Person, pk=person_id)
    form = ForgetForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        forgotten = actions.forget(person, delete_files=form.cleaned_data["delete_files"], user=request.user)
        return redirect("people:forgotten", forgotten_id=forgotten.pk)
    context = {"person": person, "form": form, "preview": pages.forget_preview(person)}
    return render(request, "people/forget.html", context, status=400 if form.errors else 200)


@require_GET
def forgotten(request, forgotten_id: int):
    """The erasure report of a person forgotten on request."""
    record = get_object_or_404(ForgottenPerson, pk=forgotten_id)
    return render(request, "people/forgotten.html", {"forgotten": record, "report": record.report})


@require_http_methods(["GET", "POST"])
def review_person(request, person_id: int):
    """ "Is this <name>?": the faces to ask about, and the answers for many at once."""
    person = get_object_or_404(Person, pk=person_id)
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            face_ids = review.decidable(person, form.cleaned_data["faces"])
        except Face.DoesNotExist as error:
            raise Http404(str(error)) from None
        except review.NotDecidable as error:
            form.add_error("faces", str(error))
        else:
            if form.cleaned_data["decision"] == "confirm":
                count = actions.confirm(person, face_ids, user=request.user)
                messages.success(request, f"{count} face{'s' if count != 1 else ''} confirmed as {person.label}.")
            else:
                count = actions.reject(person, face_ids, user=request.user)
                messages.success(request, f"{count} face{'s' if count != 1 else ''} marked as not {person.label}.")
            return redirect("people:review", person_id=person.pk)
    context = {"person": person, "form": form, "suggestions": review.suggestions(person)}
    return render(request, "people/review.html", context, status=400 if form.errors else 200)


@require_GET
def review_next(request):
    """The queue's entry: the next named person with faces to ask about (after ?after=<id>, to skip one)."""
    person, last = review.next_person(after=parse_id(request.GET.get("after", "")) or 0)
    if person is not None:
        return redirect("people:review", person_id=person.pk)
    return render(request, "people/review_done.html", {"last": last})


@require_GET
def find(request):
    """The search box's name: the one person it names, the people whose names hold it, or that nobody matched."""
    form = NameSearchForm(request.GET)
    if not form.is_valid():
        return render(request, "people/find.html", {"form": form}, status=400)
    found = list(pages.matching_people(form.cleaned_data["name"])[: FOUND_LISTED + 1])
    if len(found) == 1:
        return redirect(found[0])
    context = {"form": form, "found": found[:FOUND_LISTED], "more": len(found) > FOUND_LISTED}
    return render(request, "people/find.html", context)


@require_POST
def add_face(request, asset_id: int):
    """A face the detector missed, from the box a user drew on the photo's page."""
    asset = get_object_or_404(Asset, pk=asset_id)
    form = AddFaceForm(request.POST)
    if form.is_valid():
        try:
            face = manual_faces.add_face(asset, form.box, form.cleaned_data["person"], user=request.user)
        except manual_faces.CannotAdd as error:
            form.add_error(None, str(error))
        except VectorStoreUnavailable as error:
            logger.warning("asset %s: face not added: %s", asset.pk, error)
            context = {"asset": asset, "form": form, "unavailable": True}
            return render(request, "people/add_face_refused.html", context, status=503)
        else:
            who = face.person.label if face.person else "nobody yet"
            messages.success(request, f"Face added ({who}).")
            return redirect("search:asset", asset_id=asset.pk)
    return render(request, "people/add_face_refused.html", {"asset": asset, "form": form}, status=400)
