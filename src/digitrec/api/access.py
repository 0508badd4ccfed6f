"""Who may call what: a session sees and labels its own predictions, the admin token opens the
views across sessions, and an optional API key closes the whole API to strangers."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from pydantic import SecretStr

from digitrec.config import Settings
from digitrec.contract import API_KEY_HEADER, SESSION_ID_HEADER, ForbiddenError, UnauthorizedError
from digitrec.schemas import SESSION_ID_PATTERN

BEARER_PREFIX = "bearer "


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _matches(given: str | None, expected: SecretStr) -> bool:
    # Constant time: the comparison must not tell how much of a guess was right.
    return given is not None and secrets.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    )


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[len(BEARER_PREFIX) :].strip() if value.lower().startswith(BEARER_PREFIX) else None


def is_admin(request: Request) -> bool:
    """Whether the request carries the configured admin token."""
    token = _settings(request).admin_token
    return token is not None and _matches(_bearer(request), token)


async def require_api_key(request: Request) -> None:
    """With DIGITREC_API_KEY set, the request must carry it (or the admin token)."""
    key = _settings(request).api_key
    if key is None or _matches(request.headers.get(API_KEY_HEADER), key) or is_admin(request):
        return
    raise UnauthorizedError(f"this service needs its API key in the {API_KEY_HEADER} header")


async def require_admin(request: Request) -> None:
    """Views across sessions: only with `Authorization: Bearer <DIGITREC_ADMIN_TOKEN>`."""
    if _settings(request).admin_token is None:
        raise ForbiddenError("views across sessions are off: DIGITREC_ADMIN_TOKEN is not set")
    if not is_admin(request):
        raise UnauthorizedError("this view needs `Authorization: Bearer <admin token>`")


async def request_session(
    session_id: Annotated[
        str | None, Query(pattern=SESSION_ID_PATTERN, description="The session that asks.")
    ] = None,
    header: Annotated[
        str | None, Header(alias=SESSION_ID_HEADER, pattern=SESSION_ID_PATTERN)
    ] = None,
) -> str | None:
    """The session a request speaks for: `session_id` in the query, or the X-Session-ID header."""
    return session_id or header


SessionDep = Annotated[str | None, Depends(request_session)]


async def session_or_admin(request: Request, session_id: SessionDep) -> str | None:
    """The asking session; None (every session) only for the admin."""
    if session_id is None:
        await require_admin(request)
    return session_id


SessionOrAdminDep = Annotated[str | None, Depends(session_or_admin)]
AdminDep = Depends(require_admin)
ApiKeyDep = Depends(require_api_key)
