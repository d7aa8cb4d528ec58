"""Sinks synced from their own thread, so that loading a store never stalls the crawl's requests.

Each sink is created, used and closed on that one thread (LadybugDB objects must stay on the
thread that made them), with its own read connection to the journal: the journal is SQLite in
WAL mode, so it reads a consistent prefix while the crawl goes on writing. The crawl asks for a
sync at each level's end (`request`, which returns at once; requests made while a sync runs are
folded into the next one) and waits only at its own end (`finish`), for the rows it wrote last.
A sink that cannot be reached is reported once, as before; an exception in a sink (its store
locked, a full disk) stops the syncing and is raised in the crawl at its next level end.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..journal import Journal
from ..progress import NullProgress, Progress

if TYPE_CHECKING:
    from ..sinks import Sink, SyncReport

THREAD_NAME = "entrez-sync"
READER_CACHE_KIB = 8192  # also the native name (`top -H`, /proc/<pid>/task/*/comm)


class BackgroundSync:
    """One thread owning the sinks; `request` a sync, `finish` waits for an up-to-date one."""

    def __init__(
        self, journal_path: Path, openers: Sequence[Callable[[], Sink]], *,
        close: Sequence[bool] = (), progress: Progress | None = None,
    ) -> None:
        self.journal_path = journal_path
        self.openers = list(openers)
        self.close_them = list(close) or [True] * len(self.openers)
        self.progress = progress or NullProgress()
        self.reports: dict[str, SyncReport] = {}
        self.error: BaseException | None = None
        self._warned: set[str] = set()
        self._cond = threading.Condition()
        self._asked = 0  # requests made
        self._done = 0  # requests covered by a finished sync
        self._stop = False
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=False)

    def start(self) -> None:
        """Open the sinks on their thread; raises here what opening raised (a locked store)."""
        self._thread.start()
        self._opened.wait()
        self.raise_if_failed()

    def request(self) -> None:
        """Ask for a sync of everything committed so far; returns at once."""
        with self._cond:
            self._asked += 1
            self._cond.notify_all()

    def finish(self) -> dict[str, SyncReport]:
        """A sync of everything committed so far, waited for; its reports by sink name."""
        with self._cond:
            self._asked += 1
            wanted = self._asked
            self._cond.notify_all()
            while self._done < wanted and self.error is None and self._thread.is_alive():
                self._cond.wait()
        self.raise_if_failed()
        return dict(self.reports)

    def raise_if_failed(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        """Stop after the sync in progress (if any); the sinks are closed on their thread."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    # .. the thread ...............................................................................

    def _run(self) -> None:
        _name_native_thread(THREAD_NAME)
        sinks: list[Sink] = []
        journal: Journal | None = None
        try:
            try:
                journal = Journal(self.journal_path, create=False)
                # a reader of rows in id order: a small page cache (the writer keeps the big one)
                journal.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
                for opener in self.openers:
                    sinks.append(opener())
            except BaseException as exc:
                self.error = exc
                return
            finally:
                self._opened.set()
            while True:
                with self._cond:
                    while self._asked == self._done and not self._stop:
                        self._cond.wait()
                    if self._stop and self._asked == self._done:
                        return
                    upto = self._asked
                try:
                    self._sync(sinks, journal)
                except BaseException as exc:  # raised in the crawl, which decides
                    with self._cond:
                        self.error = exc
                        self._cond.notify_all()
                    return
                with self._cond:
                    self._done = upto
                    self._cond.notify_all()
        finally:
            for sink, close in zip(sinks, self.close_them, strict=False):
                if close:
                    with contextlib.suppress(Exception):  # must not hide the crawl's outcome
                        sink.close()
            if journal is not None:
                journal.close()
            with self._cond:
                self._cond.notify_all()

    def _sync(self, sinks: list[Sink], journal: Journal) -> None:
        for sink in sinks:
            report = sink.sync(journal)
            earlier = self.reports.get(sink.name)
            if earlier is not None:
                report.repaired += earlier.repaired  # the summary counts every repair of the run
            self.reports[sink.name] = report
            if report.error and sink.name not in self._warned:
                self._warned.add(sink.name)
                self.progress.note(
                    f"{_sink_label(sink.name)} unavailable: {report.error}; the journal keeps "
                    "everything; run `entrez-graph sync` later"
                )


def _sink_label(name: str) -> str:
    return "Neo4j" if name.lower().startswith("neo4j") else f"store {name!r}"


def _name_native_thread(name: str) -> None:
    """Give the OS thread a name (Linux prctl PR_SET_NAME); nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)
