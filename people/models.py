"""Persons, the user's decisions about them, the blocklist of forgotten people, and who did what."""

import numpy as np
from django.conf import settings
from django.db import models
from django.urls import reverse


class Person(models.Model):
    """A group of faces of one person: formed by clustering, named and corrected by users.

    A face's link to its person is on the face (Face.person), with whether a user put it there (Face.person_pinned).
    """

    name = models.CharField(max_length=200, blank=True, db_index=True, help_text="Blank until a user names them.")
    hidden = models.BooleanField(default=False, help_text="Left off the people page unless hidden ones are shown.")
    cover = models.ForeignKey(
        "media_index.Face", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The face shown for them; their clearest face when not chosen.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        return reverse("people:person", args=[self.pk])

    @property
    def label(self) -> str:
        return self.name or f"Person {self.pk}"


class Verdict(models.Model):
    """A user's answer to "is this face this person?": remembered, so the same question is never asked again."""

    face = models.ForeignKey("media_index.Face", on_delete=models.CASCADE, related_name="verdicts")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="verdicts")
    same = models.BooleanField(help_text="Yes: it is them (the face is pinned to them). No: never suggest it again.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["face", "person"], name="one_verdict_per_face_and_person")]

    def __str__(self) -> str:
        return f"face {self.face_id} {'is' if self.same else 'is not'} {self.person}"


class ForgottenPerson(models.Model):
    """A person erased on request: their faces' vectors are kept only as a template, so they are never stored again."""

    label = models.CharField(max_length=200, help_text="The name (or 'Person N') they had when forgotten.")
    model_name = models.CharField(max_length=64, help_text="Face model the template's vectors come from.")
    dimension = models.PositiveSmallIntegerField(help_text="Length of each template vector.")
    template = models.BinaryField(help_text="float32 unit vectors, the person's faces (up to 64), row after row.")
    faces_deleted = models.PositiveIntegerField(default=0)
    faces_dropped = models.PositiveIntegerField(
        default=0, help_text="Faces found later that matched the template and were not stored."
    )
    report = models.JSONField(default=dict, help_text="The erasure report: what was deleted.")
    forgotten_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "forgotten people"

    def __str__(self) -> str:
        return f"{self.label} (forgotten)"

    def vectors(self) -> np.ndarray:
        return np.frombuffer(bytes(self.template), dtype=np.float32).reshape(-1, self.dimension)


class PeopleEvent(models.Model):
    """The audit log: every naming, merge, move, review answer, hiding and forgetting, with who and when."""

    class Action(models.TextChoices):
        RENAME = "rename"
        MERGE = "merge"
        MOVE = "move", "move faces"
        REMOVE = "remove", "not this person"
        CONFIRM = "confirm"
        REJECT = "reject"
        COVER = "cover"
        HIDE = "hide"
        SHOW = "show"
        ADD_FACE = "add_face", "add a face"
        FORGET = "forget"
        REBUILD = "rebuild", "rebuild groups"

    action = models.CharField(max_length=12, choices=Action.choices, db_index=True)
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    person_label = models.CharField(max_length=200, help_text="The person's name at the time, kept after deletion.")
    detail = models.JSONField(default=dict, help_text="What changed: faces, old and new names, the other person.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.get_action_display()} {self.person_label}"
