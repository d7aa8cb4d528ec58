"""One crawl writes a store at a time: an exclusive `fcntl` lock on `<store>/crawl.lock`."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from ..errors import BadInput, LocalIOError, StoreLocked, local_io_error, read_only_fs

LOCK_FILE = "crawl.lock"


class StoreLock:
    """An exclusive `fcntl` lock on `<store>/crawl.lock`: one crawl writes a store at a time."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; StoreLocked while another crawl holds it, LocalIOError if the disk
        refuses the lock file (full, read-only)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise local_io_error(self.path, exc, doing="open") or exc from None
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
        self._fd = fd
        try:  # the holder's PID, for the message another crawl gets
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as exc:
            self.release()
            raise local_io_error(self.path, exc) or exc from None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # no stale PID left behind for another crawl
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def check_store_path(store: Path) -> None:
    """BadInput unless the store directory exists and is writable, or can be created;
    LocalIOError (exit 4) where it is on a read-only file system."""
    if store.exists() and not store.is_dir():
        raise BadInput(f"store {store} is not a directory")
    probe = store
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.is_dir() and read_only_fs(probe):
        raise LocalIOError(
            f"cannot write store {store}: read-only file system ({probe}); the read commands "
            "(status, query, export) still work: remount it read-write and run the same "
            "command again",
            path=store, errno=errno.EROFS,
        )
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write store {store}: {probe} is not a writable directory")
