"""Make the first admin user, once: its password is DJANGO_SUPERUSER_PASSWORD or a generated one, printed once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin user if no superuser exists yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        given = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        password = given or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if given:
            self.stdout.write(f"Created admin user {username!r} with the password in DJANGO_SUPERUSER_PASSWORD.")
        else:
            self.stdout.write(f"Created admin user {username!r} with password {password!r} (shown only this once).")
