"""The machine-wide E-utilities rate limiter, shared by every thread and process per key and host.

NCBI counts requests per API key (or per IP without one) in any one-second window. Every caller
using the same key and host reserves its send time in one small JSON file locked with
`fcntl.flock` (the file name is a sha256 of host and key — never the key itself). A reservation
t satisfies t >= last + spacing and t >= (the n-th most recent reservation) + 1 s + a window
margin, where n = floor(rps): then no one-second window ever holds more than n sends, whoever
sends them, even when they reach the server with some jitter. The
caller sleeps until t outside the lock, so many requests can be in flight (latency does not lower
the rate). A 429 stores a penalty in the same file (a short pause and a slow-down factor) that
every caller honours; it decays with each success.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import BadInput

DEFAULT_RPS_NO_KEY = 3.0
DEFAULT_RPS_KEY = 10.0
DEFAULT_MARGIN = 0.05  # 5 % wider spacing: NCBI sometimes answers 429 at exactly the limit
# The n-th previous send must be at least 1 s + this long ago. Requests reach the server with
# jitter (scheduling, network); 0.1 s absorbs it at the cost of at most ~9 % of the rate
# (10 per 1.1 s = 9.1/s at rps 10), measured: 40 threads with 3 s answers never above 10.
DEFAULT_WINDOW_MARGIN = 0.1
MAX_SLOWDOWN = 4.0


def default_rate_dir() -> Path:
    env = os.environ.get("ENTREZ_GRAPH_RATE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entrez-graph"


def default_rps(has_key: bool) -> float:
    return DEFAULT_RPS_KEY if has_key else DEFAULT_RPS_NO_KEY


class RateLimiter:
    """Reserve send slots in a file shared by all callers of one (host, key)."""

    def __init__(
        self,
        rps: float,
        *,
        host: str,
        key: str | None = None,
        rate_dir: str | os.PathLike[str] | None = None,
        margin: float = DEFAULT_MARGIN,
        window_margin: float = DEFAULT_WINDOW_MARGIN,
        penalty_pause: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rps or rps <= 0:
            raise ValueError("rps must be positive")
        self.rps = float(rps)
        self.margin = margin
        self.window_margin = window_margin
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
        self.path = directory / f"rate-{digest}.json"
        self._thread_lock = threading.Lock()  # flock is per open file; keep threads orderly too
        self._last_factor = 1.0
        self.late_tolerance = margin / 2

    # -- the shared state --------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        """The shared state under an exclusive flock; written back when the block ends."""
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = b""
                while chunk := os.read(fd, 65536):
                    raw += chunk
                try:
                    state = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    state = {}  # a torn file from a killed writer: start afresh, safely
                if not isinstance(state, dict):
                    state = {}
                yield state
                data = json.dumps(state, separators=(",", ":")).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
            finally:
                os.close(fd)  # also releases the flock

    def reserve(self) -> float:
        """Reserve the next send time (epoch seconds) without sleeping."""
        with self._locked() as state:
            now = self._clock()
            factor = max(1.0, float(state.get("factor", 1.0)))
            self._last_factor = factor
            rps = self.rps / factor
            n = max(1, math.floor(rps))
            spacing = (1.0 / rps) * (1.0 + self.margin)
            window = 1.0 + self.window_margin
            slots = [float(s) for s in state.get("slots", []) if float(s) > now - window - 0.5]
            t = max(now, float(state.get("pause_until", 0.0)))
            if slots:
                t = max(t, slots[-1] + spacing)
            if len(slots) >= n:
                t = max(t, slots[-n] + window)
            slots.append(t)
            state["slots"] = slots[-max(n, 1) :]
            return t

    def acquire(self) -> float:
        """Wait for this caller's slot; return how long it waited.

        A thread that oversleeps its slot (a busy machine) by more than half the margin takes a
        fresh one instead of sending late: a late send could crowd the next window. The missed
        slot stays recorded, which only makes the others more careful.
        """
        waited = 0.0
        for _ in range(8):
            t = self.reserve()
            delay = t - self._clock()
            if delay <= 0:
                return waited
            self._sleep(delay)
            waited += delay
            if self._clock() - t <= self.late_tolerance:
                return waited
        return waited

    def penalize(self) -> None:
        """A 429: pause every caller briefly and slow all of them down (up to MAX_SLOWDOWN)."""
        with self._locked() as state:
            now = self._clock()
            factor = min(MAX_SLOWDOWN, max(1.0, float(state.get("factor", 1.0))) * 1.5)
            state["factor"] = factor
            self._last_factor = factor
            state["pause_until"] = max(float(state.get("pause_until", 0.0)),
                                       now + self.penalty_pause)

    def success(self) -> None:
        """A success: let a slow-down decay (only touches the file while one is in force)."""
        if self._last_factor <= 1.0:
            return
        with self._locked() as state:
            factor = max(1.0, float(state.get("factor", 1.0)) * 0.8)
            if factor < 1.05:
                factor = 1.0
            state["factor"] = factor
            self._last_factor = factor

    @property
    def slowdown(self) -> float:
        """The slow-down factor seen last (1.0 = none)."""
        return self._last_factor
