"""The machine-wide E-utilities rate limiter, shared by every thread and process per key and host.

NCBI counts requests per API key (or per IP without one) in any one-second window. Every caller
using the same key and host reserves its send time in one small fixed-size file, mapped into
memory and locked with `fcntl.flock` (the file name is a sha256 of host and key — never the key
itself). Sending takes two steps:

- reserve: a slot at least `(1 + margin) / n` after the previous one, n = floor(rps); the
  caller sleeps until it outside the lock, so many requests are in flight at once (latency does
  not lower the rate) and they arrive in an orderly queue;
- commit, on waking: the request may leave only if now is at least 1 s + margin after the
  n-th previous recorded send (else the caller waits the rest); the client writes its first
  bytes under the lock and the send is recorded when the write returned.

So any n + 1 consecutive real sends span at least 1 s + margin, whoever sent them and however
the sender stalled: no one-second window at the server holds more than n as long as the jitter
between leaving and arriving (network, the server's own clock) stays under the margin. A thread
that wakes late (a busy machine, the GIL) loses nothing: it sends at once if the window allows
it, and the others keep their slots.

Each step costs two `flock` calls and a few loads and stores in the shared page: no read, parse
or rewrite of the file. A 429 stores a penalty in the same page that every caller honours: a
short pause and a slow-down factor, both gone after a few successes, and a wider margin (twice
as wide, at most MAX_MARGIN), which narrows back to the caller's own only slowly (a 429 at our
own rate says the jitter on this path is larger than the margin: it stays so for a while).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import BadInput, local_io_error

DEFAULT_RPS_NO_KEY = 3.0
DEFAULT_RPS_KEY = 10.0
# Sends are spaced (1 + margin) / n apart: n + 1 of them span 1 s + margin, so a send may reach
# the server up to `margin` later than the n-th before it (the network's jitter) without an
# 11th request in any one-second window. A send is recorded once its one write (the whole
# request, transport.py) returned, so the sender's own stalls (GIL, CPU) need no margin: what
# is left is the path's jitter. 0.02 keeps 98 % of the limit (9.80/s at rps 10); a 429 widens
# it for every caller (up to MAX_MARGIN). Measured by benchmarks/limiter.py and rate.py
# (benchmarks/README.md).
DEFAULT_MARGIN = 0.02
MAX_MARGIN = 0.25
# Of the widening above the caller's own margin, what each success takes back.
MARGIN_DECAY = 0.005
MAX_SLOWDOWN = 4.0

# The shared page: magic, last reserved slot, slow-down factor, pause-until (epoch seconds), the
# margin a 429 widened (0: none), the number of sends recorded, then a ring of the last _RING
# send times.
_MAGIC = b"EGRATE04"
_HEAD = struct.Struct("<8sddddq")
_RING = 64
_SEND = struct.Struct("<d")
_FILE_SIZE = 1024
assert _HEAD.size + _RING * _SEND.size <= _FILE_SIZE
# A stored time this far ahead of now is garbage (a torn file, a clock set back), not a queue.
_SANE_AHEAD = 3600.0


def default_rate_dir() -> Path:
    env = os.environ.get("ENTREZ_GRAPH_RATE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entrez-graph"


def default_rps(has_key: bool) -> float:
    return DEFAULT_RPS_KEY if has_key else DEFAULT_RPS_NO_KEY


def spacing_for(rps: float, margin: float = DEFAULT_MARGIN) -> float:
    """Seconds between two sends: floor(rps) per 1 s + margin (below 1/s: (1 + margin) / rps)."""
    per_window = math.floor(rps) if rps >= 1 else rps
    return (1.0 + margin) / per_window


class _State:
    """The shared values, read from and written back to the mapped page under the lock."""

    __slots__ = ("factor", "last", "margin", "page", "pause_until", "sends")

    def __init__(self, page: mmap.mmap | None, last: float = 0.0, factor: float = 1.0,
                 pause_until: float = 0.0, margin: float = 0.0, sends: int = 0) -> None:
        self.page = page
        self.last, self.factor, self.pause_until, self.sends = last, factor, pause_until, sends
        self.margin = margin

    def sent(self, back: int) -> float:
        """The time of the `back`-th most recent send (1 = the last); 0.0 when there is none."""
        if back > self.sends or back > _RING or self.page is None:
            return 0.0
        (t,) = _SEND.unpack_from(self.page, _HEAD.size + ((self.sends - back) % _RING) * 8)
        return float(t) if math.isfinite(t) else 0.0

    def record(self, t: float) -> None:
        assert self.page is not None
        _SEND.pack_into(self.page, _HEAD.size + (self.sends % _RING) * 8, t)
        self.sends += 1


class RateLimiter:
    """Reserve send slots in a page shared by all callers of one (host, key)."""

    def __init__(
        self,
        rps: float,
        *,
        host: str,
        key: str | None = None,
        rate_dir: str | os.PathLike[str] | None = None,
        margin: float = DEFAULT_MARGIN,
        penalty_pause: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rps or rps <= 0 or not math.isfinite(rps):
            raise ValueError("rps must be positive")
        if not 0 <= margin < 1:
            raise ValueError("margin must be within [0, 1)")
        self.rps = float(rps)
        self.margin = margin
        self.penalty_pause = penalty_pause
        self._clock = clock
        self._sleep = sleep
        directory = Path(rate_dir) if rate_dir is not None else default_rate_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if rate_dir is not None or os.environ.get("ENTREZ_GRAPH_RATE_DIR"):
                raise BadInput(f"cannot use rate-limit directory {directory}: {exc}") from None
            # no writable home (some CI runners): share the limiter through /tmp instead
            directory = Path(tempfile.gettempdir()) / f"entrez-graph-{os.getuid()}"
            directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(f"{host}\0{key or ''}".encode()).hexdigest()[:32]
        self.path = directory / f"rate-{digest}.page"
        self._thread_lock = threading.Lock()  # flock is per open file; keep threads orderly too
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._pid = 0
        self._last_factor = 1.0
        self._last_margin = margin

    # -- the shared state --------------------------------------------------------------------

    def _open(self) -> None:
        """Open and map the shared page (again after a fork: flock is per open file).

        The page is written for real before it is mapped: storing into a mapped hole of a
        sparse file on a full disk kills the process with SIGBUS, while a write fails with
        ENOSPC, which is a LocalIOError naming this file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise local_io_error(self.path, exc, doing="open") or exc from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.fstat(fd)
                if st.st_size < _FILE_SIZE or st.st_blocks * 512 < _FILE_SIZE:
                    # zeros read as a fresh state; what is there already is kept
                    os.pwrite(fd, os.pread(fd, _FILE_SIZE, 0).ljust(_FILE_SIZE, b"\0"), 0)
                page = mmap.mmap(fd, _FILE_SIZE)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise local_io_error(self.path, exc) or exc from None
            raise
        self._fd, self._map, self._pid = fd, page, os.getpid()
        weakref.finalize(self, _close, fd, page)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_State]:
        """The shared state under an exclusive flock; written back when the block ends."""
        if self._pid != os.getpid():
            self._thread_lock = threading.Lock()  # a fork may have copied a held lock
            self._fd = self._map = None
        with self._thread_lock:
            if self._fd is None:
                self._open()
            fd, page = self._fd, self._map
            assert fd is not None and page is not None
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                state = self._read(page)
                yield state
                _HEAD.pack_into(page, 0, _MAGIC, state.last, state.factor, state.pause_until,
                                state.margin, state.sends)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _read(self, page: mmap.mmap) -> _State:
        magic, last, factor, pause_until, margin, sends = _HEAD.unpack_from(page, 0)
        horizon = self._clock() + _SANE_AHEAD
        values = (last, factor, pause_until, margin)
        if (
            magic != _MAGIC
            or not all(math.isfinite(v) for v in values)
            or not 1.0 <= factor <= MAX_SLOWDOWN
            or not 0.0 <= margin <= MAX_MARGIN
            or last > horizon
            or pause_until > horizon
            or sends < 0
        ):
            page[:] = bytes(_FILE_SIZE)  # new, torn or foreign: start afresh, safely
            return _State(page)
        return _State(page, last, factor, pause_until, margin, sends)

    def state(self) -> dict[str, float]:
        """The shared values (for tests and diagnostics)."""
        with self._locked() as s:
            sent = [s.sent(k) for k in range(min(s.sends, _RING), 0, -1)]
            return {"last": s.last, "factor": s.factor, "pause_until": s.pause_until,
                    "margin": self._margin(s), "sends": s.sends, "sent": sent}

    # -- reserving -----------------------------------------------------------------------------

    def reserve(self) -> float:
        """Reserve the next send time (epoch seconds) without sleeping."""
        with self._locked() as state:
            now = self._clock()
            self._last_factor = state.factor
            margin = self._margin(state)
            t = max(now, state.pause_until, state.last + self.spacing(state.factor, margin))
            state.last = t
            return t

    def spacing(self, factor: float = 1.0, margin: float | None = None) -> float:
        """Seconds between two reserved sends under a slow-down factor (and a margin: this
        caller's own unless given)."""
        return spacing_for(self.rps / factor, self.margin if margin is None else margin)

    def _margin(self, state: _State) -> float:
        """The margin in force: this caller's, or wider if a 429 widened it for everyone."""
        margin = max(self.margin, state.margin)
        self._last_margin = margin
        return margin

    def commit(self, send: Callable[[], object] | None = None) -> tuple[bool, float]:
        """Record a send now if the window allows it: (True, its time) or (False, when it will).

        Allowed: at least 1 s + margin after the n-th previous recorded send (n = floor of the
        rate, slowed down by a 429 penalty), and not inside a penalty pause. `send`, if given,
        runs under the lock once the window allowed `now`, and the send is recorded at the time
        it returned: the bytes left between the two, so every send leaves at least 1 s + margin
        after the time recorded for the n-th before it, whatever stalls the sender (the GIL, a
        busy CPU) before or after its system call. Returns the recorded time.
        """
        with self._locked() as state:
            now = self._clock()
            rps = self.rps / state.factor
            n = min(_RING, max(1, math.floor(rps)))
            spacing = self.spacing(state.factor, self._margin(state))
            earliest = max(state.pause_until, state.sent(n) + n * spacing)
            if now < earliest:
                return False, earliest
            if send is None:
                state.record(now)
                return True, now
            try:
                send()
            finally:
                now = self._clock()  # sent or failed: recorded either way (only safer)
                state.record(now)
            return True, now

    def wait_turn(self) -> None:
        """Sleep until this caller's reserved slot (the first step of a send)."""
        t = self.reserve()
        delay = t - self._clock()
        if delay > 0:
            self._sleep(delay)

    def record_send(self, send: Callable[[], object] | None = None) -> float:
        """Record the send now, waiting first if the window is full; return its time.

        The client calls it at the socket with `send` writing the request's first bytes, so
        the recorded time is the real one: a late waker never crowds a window, nor loses its
        turn to the back of the queue.
        """
        while True:
            sent, t = self.commit(send)
            if sent:
                return t
            self._sleep(max(0.0, t - self._clock()))

    def acquire(self) -> float:
        """Wait for a slot and record the send at once; return the time it was recorded."""
        self.wait_turn()
        return self.record_send()

    def penalize(self) -> None:
        """A 429: pause every caller briefly, slow all of them down (up to MAX_SLOWDOWN), and
        widen the margin for all of them (twice as wide, at most MAX_MARGIN)."""
        with self._locked() as state:
            now = self._clock()
            state.factor = min(MAX_SLOWDOWN, state.factor * 1.5)
            self._last_factor = state.factor
            margin = self._margin(state)
            state.margin = min(MAX_MARGIN, max(2 * margin, margin + 0.01))
            self._last_margin = state.margin
            state.pause_until = max(state.pause_until, now + self.penalty_pause)

    def success(self) -> None:
        """A success: let a slow-down decay fast and a widened margin slowly (only touches the
        page while either is in force)."""
        if self._last_factor <= 1.0 and self._last_margin <= self.margin:
            return
        with self._locked() as state:
            factor = state.factor * 0.8
            state.factor = 1.0 if factor < 1.05 else factor
            self._last_factor = state.factor
            if state.margin > self.margin:
                margin = state.margin - MARGIN_DECAY * (state.margin - self.margin)
                state.margin = 0.0 if margin - self.margin < 0.001 else margin
            self._margin(state)

    @property
    def margin_now(self) -> float:
        """The margin seen last (this caller's own, or wider after a 429)."""
        return self._last_margin

    @property
    def slowdown(self) -> float:
        """The slow-down factor seen last (1.0 = none)."""
        return self._last_factor


def _close(fd: int, page: mmap.mmap) -> None:
    with contextlib.suppress(OSError, ValueError, BufferError):
        page.close()
    with contextlib.suppress(OSError):
        os.close(fd)
