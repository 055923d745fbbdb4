"""A loopback TCP proxy in front of a server (PostgreSQL here) that a test can cut: every
connection through it dropped at once, new ones hung up on as soon as they connect (the
attempts are counted), until it is restored. What a client sees of a server restart or a
network gone, without touching the server the other tests share."""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress

from support.server import Closing

CHUNK = 65536


class TcpProxy(Closing):
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0  # passed through
        self.hung_up = 0  # attempts while cut
        self._cut = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Drop every connection under way; hang up on new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _drop(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
                if cut:
                    self.hung_up += 1
            if cut:
                _drop(client)
                continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            _drop(client)
            return
        server.settimeout(None)
        with self._lock:
            self.connections += 1
            self._open.update((client, server))
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _drop(source)
            _drop(sink)


def _drop(sock: socket.socket) -> None:
    """Close at once, with a reset: the peer learns on its next read or write."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()
