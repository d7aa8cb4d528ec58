"""Exceptions shared by every part; the CLI maps them to one-line messages and exit codes."""

from __future__ import annotations

import errno as _errno
import os as _os
import re as _re
import sqlite3 as _sqlite3


class EntrezGraphError(Exception):
    """Base of every error this package raises on purpose (the CLI prints it on one line)."""

    exit_code = 1


class BadInput(EntrezGraphError, ValueError):
    """The user's input is malformed; nothing was sent and nothing stored was changed."""

    exit_code = 2


class NCBIError(EntrezGraphError):
    """E-utilities answered with an error."""


class PermanentError(NCBIError):
    """NCBI refused the request itself (bad parameter, invalid db or ID): retrying cannot help."""


class TransientError(NCBIError):
    """Worth retrying: 5xx, timeouts, dropped connections, truncated XML, transient <ERROR>."""

    def __init__(self, message: str, *, status: int | None = None, kind: str = "server") -> None:
        super().__init__(message)
        self.status = status
        # kind: "rate" (429), "server" (5xx), "timeout", "connection", "parse",
        # "error" (<ERROR> in a 200)
        self.kind = kind

    @property
    def halves_batch(self) -> bool:
        """design.md: a batch failing with 502 or a timeout is halved before it is retried."""
        return self.status == 502 or self.kind == "timeout"


class RateLimited(TransientError):
    """HTTP 429 (NCBI sends a JSON body even on XML endpoints)."""

    def __init__(self, message: str = "API rate limit exceeded") -> None:
        super().__init__(message, status=429, kind="rate")


class StoreError(EntrezGraphError):
    """A graph store cannot be opened or written."""


class NotAStore(StoreError):
    """The path given is not a store this version can read (missing, foreign or incompatible)."""

    exit_code = 2


class StoreLocked(StoreError):
    """Another process is writing the same store."""

    exit_code = 2


class SettingsMismatch(EntrezGraphError):
    """Resuming a crawl with settings other than the ones it was started with."""

    exit_code = 2


class LocalIOError(EntrezGraphError):
    """The local disk refused us (ENOSPC, EROFS, EIO, EACCES …): exit 4, never 1 (NCBI's code).

    The message names the path and the cause on one line. Nothing committed is lost: the journal
    only commits whole transactions, and the stores are rebuilt from it where they fell behind."""

    exit_code = 4

    def __init__(self, message: str, *, path: object = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


# -- recognising a local disk failure ------------------------------------------------------------
# One place that knows how the disk says no: an OSError's errno, SQLite's result codes (and their
# texts, for builds without `sqlite_errorcode`) and LadybugDB's RuntimeError texts (its C++ I/O
# errors end in strerror(errno): "... Error: No space left on device").

_ERRNOS = {  # errno: (cause, what to do)
    _errno.ENOSPC: ("no space left on device", "free some space"),
    _errno.EDQUOT: ("disk quota exceeded", "free some space"),
    _errno.EFBIG: ("file too large for its file system", "free some space or use another disk"),
    _errno.EROFS: ("read-only file system", "make it writable"),
    _errno.EACCES: ("permission denied", "make it writable"),
    _errno.EPERM: ("operation not permitted", "make it writable"),
    _errno.EIO: ("input/output error", "check the disk"),
}
_SQLITE_CODES = {  # primary result code: errno it stands for
    13: _errno.ENOSPC,  # SQLITE_FULL "database or disk is full"
    10: _errno.EIO,  # SQLITE_IOERR "disk I/O error" (and its extended codes)
    8: _errno.EROFS,  # SQLITE_READONLY "attempt to write a readonly database"
}
_SQLITE_TEXTS = {
    "database or disk is full": _errno.ENOSPC,
    "disk i/o error": _errno.EIO,
    "attempt to write a readonly database": _errno.EROFS,
}
_CHECKPOINT_TEXT = "checkpoint failed"
_LADYBUG_IO_TEXT = "IO exception:"  # LadybugDB's file layer ("IO exception: Cannot read ...")
_MISSING = _os.strerror(_errno.ENOENT)  # a missing file is not a disk failure
_NEARLY_FULL = 1 << 20  # bytes free below which an I/O error is taken for a full disk
# "Cannot write to file. path: /x/graph.lbdb ...", "Cannot read from file: /x/graph.lbdb ..."
_LADYBUG_PATH = _re.compile(r"\b(?:path|file):? (/\S+)")


def _errno_in_text(text: str) -> int | None:
    lowered = text.lower()
    for code in _ERRNOS:
        if _os.strerror(code).lower() in lowered:
            return code
    return None


def _statvfs(path: object) -> _os.statvfs_result | None:
    """The file system holding `path` (or its nearest existing parent), if it can be asked."""
    probe = _os.path.abspath(_os.fspath(path)) if isinstance(path, (str, _os.PathLike)) else None
    while probe and not _os.path.exists(probe):
        parent = _os.path.dirname(probe)
        probe = parent if parent != probe else None
    if not probe:
        return None
    try:
        return _os.statvfs(probe)
    except OSError:
        return None


def nearly_full(path: object) -> bool:
    """Whether the file system holding `path` has (almost) no space left."""
    st = _statvfs(path)
    return st is not None and st.f_bavail * st.f_frsize < _NEARLY_FULL


def read_only_fs(path: object) -> bool:
    """Whether `path` (or its nearest existing parent) is on a file system mounted read-only."""
    st = _statvfs(path)
    return st is not None and bool(st.f_flag & _os.ST_RDONLY)


def local_io_error(
    path: object, exc: BaseException, *, doing: str = "write", resumes: bool = True
) -> LocalIOError | None:
    """`exc` as a LocalIOError naming `path` and the cause on one line, or None if it is not a
    local disk failure (then the caller handles `exc` as before).

    Recognises OSError errnos (ENOSPC, EDQUOT, EFBIG, EROFS, EACCES, EPERM, EIO), sqlite3
    errors for a full, failing or read-only disk, and LadybugDB's RuntimeErrors whose text ends
    in such an errno's message, or says a checkpoint failed. `doing` is the verb of the
    message ("write", "read", "open"); `resumes` says the same command resumes (a crawl, a
    sync), not merely that it can be run again (an export)."""
    if isinstance(exc, LocalIOError):
        return exc
    code: int | None = None
    detail = ""
    if isinstance(exc, OSError):
        code = exc.errno if exc.errno in _ERRNOS else None
        path = exc.filename or path  # the very file (a lock, a temp file) when it is known
    elif isinstance(exc, _sqlite3.Error):
        text = str(exc)
        primary = getattr(exc, "sqlite_errorcode", None)
        if primary is not None:
            code = _SQLITE_CODES.get(primary & 0xFF)
        if code is None:
            code = _SQLITE_TEXTS.get(text.strip().lower())
        if code == _errno.EROFS and path is not None and not read_only_fs(path):
            code = _errno.EACCES  # SQLITE_READONLY on a writable mount: the file's permissions
        detail = text
    elif isinstance(exc, RuntimeError):  # LadybugDB
        text = " ".join(str(exc).split())
        code = _errno_in_text(text)
        if _CHECKPOINT_TEXT in text.lower():
            detail = "its checkpoint failed"
            code = code or _errno.EIO
        elif code is None and _LADYBUG_IO_TEXT in text and _MISSING not in text:
            # "IO exception: Cannot read from file: /x ..." without an errno: a short read or
            # write of its own file
            detail = text.split(_LADYBUG_IO_TEXT, 1)[1].split(":")[0].split(".")[0].strip()
            detail = detail[:1].lower() + detail[1:]
            code = _errno.EIO
        named = _LADYBUG_PATH.search(text)
        if code is not None and named:
            path = named.group(1).rstrip(".,:;")
    if code is None:
        return None
    if code == _errno.EIO and path is not None and nearly_full(path):
        # LadybugDB may report a full disk as a failed checkpoint or a short read of its own
        # file (a write before it came up short): name the cause the user can act on.
        code = _errno.ENOSPC
    cause, advice = _ERRNOS[code]
    if detail and detail.lower() != cause:
        cause += f" ({detail})"
    where = f" {path}" if path is not None else " to the local disk"
    tail = f"nothing committed is lost: {advice} and run the same command again to resume"
    if not resumes:
        tail = f"{advice} and run the same command again"
    return LocalIOError(
        f"cannot {doing}{where}: {cause}; {tail}",
        path=path,
        errno=code,
    )
