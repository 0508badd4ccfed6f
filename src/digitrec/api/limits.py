"""Refuse request bodies over the upload limit before reading them whole (HTTP 413, JSON)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.api.errors import TOO_LARGE, error_response


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is refused at once; a streamed (chunked) body
    is counted as it arrives and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            response = error_response(
                TOO_LARGE.status, self._message(), TOO_LARGE.code, {"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the app, whose handler turns it into the JSON answer.
                    raise HTTPException(TOO_LARGE.status, self._message())
            return message

        await self.app(scope, receive_counted, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"
