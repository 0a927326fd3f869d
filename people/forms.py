"""The people pages' forms: every value a request carries is checked here before a service sees it.

A person is chosen by name or by number ("#12" or "12"); a number that is no person's, like every unknown id in a
request, is a 404. A name must be one person's exactly (case aside): several people of one name need the number.
"""

import re

from django import forms
from django.http import Http404

from .models import Person

ID = re.compile(r"#?([0-9]{1,18})")
# Faces one request may act on: a page of faces, with room to spare.
MAX_FACES = 5000
NAME_MAX_CHARS: int = Person._meta.get_field("name").max_length or 200


def parse_id(value: object) -> int | None:
    """A positive id from a request value ("12" or "#12"), or None when it is not one."""
    match = ID.fullmatch(value.strip()) if isinstance(value, str) else None
    return int(match[1]) if match else None


class FaceIdsField(forms.Field):
    """Face numbers from checkboxes (each value one number), without repeats; whether they exist the view asks."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"required": "Select at least one face."}

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        if len(values) > MAX_FACES:
            raise forms.ValidationError(f"At most {MAX_FACES} faces at once; select fewer.")
        ids = []
        for item in values:
            if not isinstance(item, str) or not re.fullmatch(r"[0-9]{1,18}", item):
                raise forms.ValidationError(f"{str(item)[:40]!r} is not a face number.")
            ids.append(int(item))
        return sorted(set(ids))


class FaceIdField(forms.CharField):
    """One face number."""

    def to_python(self, value) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        if not re.fullmatch(r"[0-9]{1,18}", text):
            raise forms.ValidationError(f"{text[:40]!r} is not a face number.")
        return int(text)


class PersonField(forms.CharField):
    """A person by number ("#12", or "12" unless someone is called that) or by their exact name, case aside."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", NAME_MAX_CHARS + 1)
        kwargs.setdefault("help_text", "A name, or a person's number such as #12.")
        super().__init__(**kwargs)

    def clean(self, value) -> Person | None:
        text = super().clean(value)
        return self.resolve(text) if text else None

    @staticmethod
    def resolve(text: str) -> Person:
        """The one person the text names; ValidationError for no name or several, Http404 for an unknown number."""
        named = list(Person.objects.filter(name__iexact=text)[:11]) if not text.startswith("#") else []
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            numbers = ", ".join(f"#{person.pk}" for person in named[:10])
            raise forms.ValidationError(f"Several people are called {text}: give the number of one ({numbers}).")
        number = parse_id(text)
        if number is None:
            raise forms.ValidationError(f"Nobody is called {text}. Check the name, or give their number (#12).")
        person = Person.objects.filter(pk=number).first()
        if person is None:
            raise Http404(f"No person has the number {number}.")
        return person


class RenameForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_CHARS, required=False, help_text="Leave it empty to make them unnamed again."
    )


class MergeForm(forms.Form):
    target = PersonField(label="Merge into")

    def __init__(self, *args, person: Person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.person = person

    def clean_target(self) -> Person:
        target = self.cleaned_data["target"]
        if target.pk == self.person.pk:
            raise forms.ValidationError("That is this person: choose another one to merge into.")
        return target


class MoveForm(forms.Form):
    """Move the selected faces to `target`, or with `out` take them out of the person ("not this person")."""

    faces = FaceIdsField()
    target = PersonField(label="Move to", required=False)
    out = forms.BooleanField(required=False)

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if not cleaned.get("out") and "target" in cleaned and cleaned["target"] is None:
            self.add_error("target", "Say whom to move them to, or choose “Not this person”.")
        return cleaned


class CoverForm(forms.Form):
    cover = FaceIdField()


class HideForm(forms.Form):
    hidden = forms.TypedChoiceField(choices=[("1", "hide"), ("0", "show")], coerce=lambda value: value == "1")


class ForgetForm(forms.Form):
    delete_files = forms.BooleanField(
        required=False, label="Delete the files too", help_text="The photos and videos they appear in, from the inbox."
    )


class ReviewForm(forms.Form):
    faces = FaceIdsField()
    decision = forms.ChoiceField(choices=[("confirm", "Confirm"), ("reject", "Reject")])


class AddFaceForm(forms.Form):
    """A box in pixels of the upright photo, and optionally whom it shows."""

    left = forms.FloatField(min_value=-1e9, max_value=1e9)
    top = forms.FloatField(min_value=-1e9, max_value=1e9)
    right = forms.FloatField(min_value=-1e9, max_value=1e9)
    bottom = forms.FloatField(min_value=-1e9, max_value=1e9)
    person = PersonField(required=False, label="Who is it (optional)")

    @property
    def box(self) -> tuple[float, float, float, float]:
        data = self.cleaned_data
        return data["left"], data["top"], data["right"], data["bottom"]


class NameSearchForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_CHARS, label="or a name")
