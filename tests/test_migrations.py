"""Every model change has its migration: `makemigrations --check` finds nothing left to write."""

import io

import pytest
from django.core.management import call_command

from media_index.models import Asset

# makemigrations checks the applied migrations' history against the database, so it needs one.
pytestmark = pytest.mark.django_db


def makemigrations_check() -> tuple[int, str]:
    """Exit code and output of `makemigrations --check --dry-run` (0: nothing to write)."""
    output = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output, stderr=output)
    except SystemExit as stop:
        return int(stop.code or 0), output.getvalue()
    return 0, output.getvalue()


def test_no_model_change_lacks_its_migration():
    code, output = makemigrations_check()
    assert code == 0, f"models changed without a migration: run `python manage.py makemigrations`\n{output}"
    assert "No changes detected" in output


def test_a_field_changed_without_a_migration_is_caught(monkeypatch):
    monkeypatch.setattr(Asset._meta.get_field("sha256"), "max_length", 65)
    code, output = makemigrations_check()
    assert code == 1 and "Alter field sha256 on asset" in output, output
