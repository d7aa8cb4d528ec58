"""The HTTP transport under `EutilsClient`: an overall deadline per request, and a hook at the wire.

httpx's timeouts bound each socket operation, not the request: a server trickling a byte a second
keeps every read under its timeout and the request alive for ever. Here every socket read, write
and connect of a request gets at most what is left of that request's deadline (set per thread by
`deadline()`), so the whole exchange — headers and body — ends within it.

The same socket layer hands a request's first write to a per-thread `send_through` hook: the rate
limiter checks its window, lets the bytes leave and records the time the write returned, all
under its lock, so the times it counts bound the real ones (the GIL, httpx's own work, a busy
machine are not jitter the limiter's margin has to absorb). httpcore writes a POST's head and
its body separately; the head is held until the body is there, so the whole request leaves in
that one write: a server that counts a request when it has arrived (its last byte) cannot see it
later than the limiter recorded it, however long the GIL kept the sender between two writes.

httpx offers no public way to choose httpcore's network backend; `make_transport` sets it on the
connection pool it builds and reports whether it could (`installed`), so the client falls back to
recording sends before the request, and to httpx's per-operation timeouts, if a future httpcore
moves it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import typing
from collections.abc import Callable, Iterator

import httpcore
import httpx

_local = threading.local()
# A request head (httpcore's first write) followed by a body of this many bytes at most is
# held until the body is there and sent with it; larger bodies go as they come.
MAX_COALESCED = 1 << 20
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)


def _body_follows(head: bytes) -> int:
    """Bytes of body that follow a complete request head (0 if none, or not a head)."""
    end = head.find(b"\r\n\r\n")
    if end < 0 or end + 4 != len(head):
        return 0
    match = _LENGTH.search(head, 0, end + 2)
    return int(match.group(1)) if match else 0


@contextlib.contextmanager
def deadline(
    seconds: float, send_through: Callable[[Callable[[], object]], object] | None = None
) -> Iterator[None]:
    """Bound every socket operation of this thread's request to `seconds` from now in total;
    `send_through(write)` performs the request's first write."""
    _local.deadline = time.monotonic() + seconds
    _local.send_through = send_through
    _local.held = None
    try:
        yield
    finally:
        _local.deadline = None
        _local.send_through = None
        _local.held = None


def _left(timeout: float | None, exc: type[Exception]) -> float | None:
    end = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise exc("the request's overall deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A network stream whose operations share the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        hook = getattr(_local, "send_through", None)
        if hook is None or not buffer:
            self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))
            return
        held: tuple[bytearray, int] | None = getattr(_local, "held", None)
        if held is None:
            body = _body_follows(buffer)
            if 0 < body <= MAX_COALESCED:
                _local.held = (bytearray(buffer), len(buffer) + body)  # the head: wait for the body
                return
            data = bytes(buffer)
        else:
            pending, total = held
            pending += buffer
            if len(pending) < total:
                return
            _local.held = None
            data = bytes(pending)
        _local.send_through = None

        def first() -> None:
            rest = data[self._send_now(data) :]
            if rest:  # a full socket buffer: rare for a request's first bytes
                self._inner.write(rest, _left(timeout, httpcore.WriteTimeout))

        hook(first)

    def _send_now(self, buffer: bytes) -> int:
        """Hand what the socket takes at once to the kernel, in one release of the GIL.

        A socket with a timeout first polls (releasing the GIL), then takes the GIL back before
        it sends: in a process where another thread computes, that takes up to hundreds of ms,
        and the request would leave that much after the time the limiter recorded. Without a
        timeout the send is one system call; what it cannot take now goes the normal way.
        """
        sock = self._inner.get_extra_info("socket")
        if not isinstance(sock, socket.socket):
            return 0
        old = sock.gettimeout()
        try:
            sock.settimeout(0.0)
            return sock.send(buffer)
        except OSError:  # would block, or a failure the normal write reports properly
            return 0
        finally:
            sock.settimeout(old)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      _left(timeout, httpcore.ConnectTimeout))
        return _Stream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every stream bounded by the request's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None
                    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                         local_address, socket_options)
        return _Stream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[typing.Any] | None = None
                            ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout),
                                                 socket_options)
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def make_transport(limits: httpx.Limits) -> tuple[httpx.HTTPTransport, bool]:
    """An httpx transport on the deadline-bounded backend, and whether it could be installed."""
    transport = httpx.HTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _Backend()
        return transport, True
    return transport, False
