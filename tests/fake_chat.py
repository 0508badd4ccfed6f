"""A small local server that speaks the chat-completions protocol, for the `llm` reader.

Its answers are set per test: a canned reply, a malformed body, an HTTP status, a delay.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "test-llm-key"
MODEL = "vision-test"


@dataclass
class FakeChat:
    """What the fake endpoint answers next, and what it was sent."""

    status: int = 200
    body: Any = None  # None: a chat completion holding `reply`
    reply: str = "7"
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def fake_chat_server() -> Iterator[tuple[FakeChat, str]]:
    """A local chat-completions server; yields its state and its base URL (ending in /v1)."""
    state = FakeChat()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            time.sleep(state.delay_s)
            body = state.body
            if body is None:
                body = {"choices": [{"message": {"role": "assistant", "content": state.reply}}]}
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
