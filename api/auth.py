"""Who may call the API: a bearer token (api/tokens.py) on every request, a writable one for every change."""

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from . import tokens
from .models import ApiToken


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A missing, unknown or revoked token is 401; a read-only one where the
    operation changes something is 403. The token's user becomes request.user, so changes are audited as theirs."""

    def __init__(self, write: bool = False) -> None:
        super().__init__()
        self.write = write

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.find(token)
        if found is None:
            return None
        if self.write and found.read_only:
            raise HttpError(403, "This token is read-only: it may search and read, not change anything.")
        request.user = found.user
        return found


class WritableTokenAuth(TokenAuth):
    """A token that is not read-only: its own security scheme, so the schema shows which operations change things."""

    def __init__(self) -> None:
        super().__init__(write=True)


READ = TokenAuth()
WRITE = WritableTokenAuth()
