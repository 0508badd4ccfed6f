"""A TCP proxy that can stop forwarding: a database that hangs without closing connections.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:   # or a Unix socket path upstream
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/db"
        proxy.pause()    # connections stay open, nothing gets through either way
        proxy.resume()   # what was held back is delivered, in order

While paused it still accepts connections (as a listening kernel would) but forwards no
byte, in either direction: to the application the database is silent, not down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

CHUNK_BYTES = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `upstream`, one pair of threads per connection."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    def pause(self) -> None:
        """Stop forwarding: every connection, old and new, goes silent."""
        self._forwarding.clear()

    def resume(self) -> None:
        """Forward again, delivering whatever was held back."""
        self._forwarding.set()

    def close(self) -> None:
        """Close the listener and every connection."""
        self._closed.set()
        self._forwarding.set()  # release the pumps so that they see the closed sockets
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream)
            return sock
        return socket.create_connection(self.upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK_BYTES)
                self._forwarding.wait()  # paused: hold the bytes, read no more
                if not data or self._closed.is_set():
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            # One side finished: end both, as a real proxy would.
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
