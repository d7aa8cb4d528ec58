"""Live progress on a terminal: one `\\r` line on stderr, quiet when stderr is not a terminal.

The crawl engine calls `update(**fields)` after each committed batch; `note(text)` prints a line
that stays (warnings such as a store being unavailable), also when not on a terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO


class Progress:
    """A throttled status line. `enabled=None` means "only when `stream` is a terminal"."""

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool | None = None, interval: float = 0.2
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval = interval
        self.fields: dict[str, Any] = {}
        self._started = time.monotonic()
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()

    def update(self, force: bool = False, **fields: Any) -> None:
        """Merge `fields` into the state and redraw at most every `interval` seconds."""
        with self._lock:
            self.fields.update(fields)
            if not self.enabled:
                return
            now = time.monotonic()
            if not force and now - self._last < self.interval:
                return
            self._last = now
            self._draw(self.line())

    def line(self) -> str:
        """The status text: level, requests and rate, records, edges, frontier left."""
        f = self.fields
        elapsed = max(time.monotonic() - self._started, 1e-6)
        parts = []
        if "phase" in f:
            parts.append(str(f["phase"]))
        if "level" in f:
            parts.append(f"level {f['level']}")
        if "requests" in f:
            parts.append(f"{f['requests']} requests ({f['requests'] / elapsed:.1f}/s)")
        for key, label in (("records", "records"), ("edges", "edges"), ("frontier", "left")):
            if key in f:
                parts.append(f"{f[key]} {label}")
        if f.get("failed"):
            parts.append(f"{f['failed']} failed")
        return " | ".join(parts)

    def _draw(self, text: str) -> None:
        pad = max(self._width - len(text), 0)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def note(self, text: str) -> None:
        """A line that stays (printed also when not on a terminal)."""
        with self._lock:
            if self.enabled and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self._width = 0
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Finish the status line so later output starts on a clean line."""
        with self._lock:
            if self.enabled and self._width:
                self._draw(self.line())
                self.stream.write("\n")
                self.stream.flush()
                self._width = 0


class NullProgress(Progress):
    """Progress that shows nothing (library use, tests) but still prints notes to stderr."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
