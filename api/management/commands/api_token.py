"""Make, list and revoke API tokens from the command line."""

from django.core.management.base import BaseCommand, CommandError

from api import tokens
from api.models import ApiToken


class Command(BaseCommand):
    help = "API tokens: `create USER [--read-only] [--name NAME]` prints a new token once; `list`; `revoke PREFIX`."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Make a token for a user and print its secret (shown once).")
        create.add_argument("username")
        create.add_argument("--read-only", action="store_true", help="It may search and read, never change.")
        create.add_argument("--name", default="", help="What it is for (a script, a service).")
        actions.add_parser("list", help="Every token: prefix, user, name, powers, last use, revoked or not.")
        revoke = actions.add_parser("revoke", help="Refuse a token from now on.")
        revoke.add_argument("prefix", help="The token's first characters, as `list` shows them (or the whole token).")

    def handle(self, *args, action: str, **options) -> None:
        if action == "create":
            self.create(options["username"], options["name"], options["read_only"])
        elif action == "list":
            self.list()
        else:
            self.revoke(options["prefix"])

    def create(self, username: str, name: str, read_only: bool) -> None:
        user = tokens.user_named(username)
        if user is None:
            raise CommandError(f"No user is called {username!r}: make one with `manage.py createsuperuser`.")
        if not user.is_active:
            raise CommandError(f"{username!r} is not an active user: activate them in the admin first.")
        _token, secret = tokens.issue(user, name, read_only)
        self.stderr.write(f"Token for {username}{' (read-only)' if read_only else ''}; it is shown this once:")
        self.stdout.write(secret)

    def list(self) -> None:
        for token in ApiToken.objects.select_related("user"):
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            powers = "read-only" if token.read_only else "read-write"
            self.stdout.write(f"{token.prefix}  {token.user}  {powers}  used {used}  {state}  {token.name}")

    def revoke(self, prefix: str) -> None:
        found = list(ApiToken.objects.filter(prefix=prefix[:12], revoked_at=None).select_related("user"))
        if not found:
            raise CommandError(f"No active token starts with {prefix[:12]!r}: see `manage.py api_token list`.")
        if len(found) > 1:
            raise CommandError(f"{len(found)} active tokens start with {prefix[:12]!r}: give more of the token.")
        tokens.revoke(found[0])
        self.stdout.write(f"revoked {found[0].prefix}… of {found[0].user}")
