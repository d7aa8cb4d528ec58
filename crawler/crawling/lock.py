"""One crawl writes a store at a time: an exclusive `fcntl` lock on `<store>/crawl.lock`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import BadInput, StoreLocked

LOCK_FILE = "crawl.lock"


class StoreLock:
    """An exclusive `fcntl` lock on `<store>/crawl.lock`: one crawl writes a store at a time."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StoreLocked(
                f"store {self.path.parent} is being written by another entrez-graph crawl{who}; "
                "wait for it to finish or use another --store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def check_store_path(store: Path) -> None:
    """BadInput unless the store directory exists and is writable, or can be created."""
    if store.exists() and not store.is_dir():
        raise BadInput(f"store {store} is not a directory")
    probe = store
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write store {store}: {probe} is not a writable directory")
