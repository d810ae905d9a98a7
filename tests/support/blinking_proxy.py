"""A TCP proxy in front of PostgreSQL that can blink: drop every connection and refuse new ones for a while.

A real outage of the store as a client sees it (the server restarting, the network gone for seconds),
without stopping the server the rest of the suite uses."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class BlinkingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        """The database URL with its host and port pointed at the proxy."""
        head, _, tail = database_url.partition("@")
        return f"{head}@127.0.0.1:{self.port}/{tail.split('/', 1)[1]}"

    def blink(self, seconds: float) -> None:
        """Drop every open connection now and refuse new ones for `seconds`."""
        with self._lock:
            self.down_until = time.monotonic() + seconds
            links, self._links = self._links, []
        for link in links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if time.monotonic() < self.down_until:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
