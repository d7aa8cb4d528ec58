"""Exceptions shared by every part; the CLI maps them to one-line messages and exit codes."""

from __future__ import annotations


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
