"""The audit log's one writer: every change to people leaves a PeopleEvent with who and when."""

import logging

from .models import PeopleEvent, Person

logger = logging.getLogger(__name__)


def record(
    action: str,
    person: Person | None,
    user=None,
    detail: dict | None = None,
    label: str | None = None,
    **fields: object,
) -> PeopleEvent:
    """One event; person_label keeps the name the person had, so the log still reads after they are deleted.
    What changed is `detail`, and any further keyword arguments."""
    event = PeopleEvent.objects.create(
        action=action,
        person=person if person is not None and person.pk else None,
        person_label=(label if label is not None else person.label if person is not None else "")[:200],
        detail=(detail or {}) | fields,
        user=user if user is not None and getattr(user, "pk", None) else None,
    )
    logger.info("people: %s %r by %s (event %s)", action, event.person_label, event.user or "the system", event.pk)
    return event
