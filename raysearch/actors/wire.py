"""A shard's read calls over a plain TCP connection beside Ray ("the wire").

Why: a Ray actor call costs ~1 ms here (submission, scheduling onto the actor's thread
pool, the reply, task bookkeeping on both sides), against ~0.04 ms for the same call and
answer over a kept-open TCP connection (`benchmarks/README.md`, "Search over HTTP"). A
search is one round of calls to every shard, so Ray's cost was most of its time and CPU.
Ray stays the control plane: it places, starts, restarts and kills the ShardStore, and
hands out the wire's address; every write, and any call that finds the wire unusable,
still goes through Ray. Serve's HAProxy ingress makes the same trade for HTTP.

Protocol: a client opens a connection and sends the server's 32-byte token (handed out
by the actor, so only holders of the actor handle have it); the server closes a
connection whose first bytes are not the token, before reading anything else. Then
frames, each a 4-byte little-endian length and a pickle: requests (method, args),
answers (True, value) or (False, exception). Nothing is unpickled before the token
matched; the token is as secret as the cluster's own network (Ray's calls travel on it
the same way).

Pure sockets and threads on the server (a thread per connection, as Ray runs a shard's
reads on a pool of threads); asyncio streams on the client (the ingress's event loop).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import pickle
import secrets
import socket
import struct
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
TOKEN_BYTES = 32
MAX_FRAME = 1 << 30
MAX_IDLE = 16  # connections a client keeps open to one server between calls
_LEN = struct.Struct("<I")


class WireUnavailable(Exception):
    """The wire cannot carry this call (no server, connection lost): use Ray instead."""


class WireServer:
    """Serves `handler(method, args)` for the methods in `allowed` on host:port (0 = any free)."""

    def __init__(self, handler: Callable[[str, tuple], object], allowed: frozenset[str], host: str):
        self.handler, self.allowed = handler, allowed
        self.token = secrets.token_bytes(TOKEN_BYTES)
        self._sock = socket.create_server((host, 0), backlog=128)
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.address = (host, self._sock.getsockname()[1])
        threading.Thread(target=self._accept, name="wire-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="wire-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._serve_frames(conn)
            finally:
                with self._lock:
                    self._conns.discard(conn)

    def _serve_frames(self, conn: socket.socket) -> None:
        try:
            if not hmac.compare_digest(_read_exactly(conn, TOKEN_BYTES), self.token):
                return  # not one of ours: nothing of it is read further
            while True:
                (size,) = _LEN.unpack(_read_exactly(conn, _LEN.size))
                if size > MAX_FRAME:
                    return
                method, args = pickle.loads(_read_exactly(conn, size))
                try:
                    if method not in self.allowed:
                        raise WireUnavailable(f"{method} is not served on the wire")
                    answer = (True, self.handler(method, args))
                except Exception as exc:  # noqa: BLE001 - the caller's error, raised where it waits
                    answer = (False, exc)
                try:
                    body = pickle.dumps(answer, protocol=5)
                except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
                    body = pickle.dumps((False, WireUnavailable(f"answer of {method}: {exc!r}")), protocol=5)
                conn.sendall(_LEN.pack(len(body)) + body)
        except (OSError, EOFError):  # the client went away
            return

    def close(self) -> None:
        """Stop listening and end every connection (as the process's end would)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone would not)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class WireClient:
    """Calls to one WireServer from an asyncio event loop, over a pool of kept-open
    connections (one per call in flight). `call` raises WireUnavailable when the wire
    cannot carry the call (the caller then uses Ray); the connections are then dropped,
    and the next call connects afresh."""

    def __init__(self, address: tuple[str, int], token: bytes):
        self.address, self.token = address, token
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.broken = False

    async def call(self, method: str, *args):
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._drop()
            self._loop = loop
        conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = await self._connect()
            reader, writer = conn
            body = pickle.dumps((method, args), protocol=5)
            writer.write(_LEN.pack(len(body)) + body)
            (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
            ok, value = pickle.loads(await reader.readexactly(size))
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            if conn is not None:
                conn[1].close()
            self.broken = True
            self._drop()
            raise WireUnavailable(f"{method} on {self.address}: {exc!r}") from exc
        except BaseException:  # cancelled half-way: the connection's state is unknown
            if conn is not None:
                conn[1].close()
            raise
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:  # a burst is over: no more connections (and server threads) kept than this
            conn[1].close()
        if ok:
            return value
        raise value

    async def _connect(self):
        reader, writer = await asyncio.open_connection(*self.address)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(self.token)
        return reader, writer

    def _drop(self) -> None:
        for _, writer in self._idle:
            try:
                writer.close()
            except RuntimeError:  # its event loop is closed already
                pass
        self._idle.clear()
