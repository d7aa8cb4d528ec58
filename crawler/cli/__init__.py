"""The `entrez-graph` command line: thin click commands over Python functions of the same names.

Every module in this package except `options` defines one click command named `command`.
"""

from __future__ import annotations

import errno
import importlib
import io
import logging
import os
import pkgutil
import sqlite3
import stat
import sys
from collections.abc import Callable

import click

from ..errors import EntrezGraphError, local_io_error, nearly_full, read_only_fs

_NOT_COMMANDS = {"options"}


class _LogLines(logging.Handler):
    """Warnings of the `crawler` loggers as one short line each on stderr, never a traceback.

    While a command shows a live progress line it routes them through `note` (set by
    `log_notes`), so a warning does not land in the middle of that line.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.note: Callable[[str], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())
            if self.note is not None:
                self.note(text)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
        except Exception:
            self.handleError(record)


LOG_LINES = _LogLines()


def install_logging() -> None:
    """Attach the one-line stderr handler to the `crawler` logger (idempotent)."""
    logger = logging.getLogger("crawler")
    if LOG_LINES not in logger.handlers:
        logger.addHandler(LOG_LINES)


class _Group(click.Group):
    """Turns our errors and click's usage errors into one line on stderr and their exit code.

    A local disk failure that reached here unnamed (an OSError, a sqlite3 or LadybugDB error
    for a full, read-only or failing disk) is one line and exit 4 too; anything else is a bug
    and keeps its traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EntrezGraphError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # click would print usage, a hint and the error
            where = exc.ctx.command_path if exc.ctx else "entrez-graph"
            click.echo(f"Error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader stopped reading (`demo | head -2`): a quiet, successful end. Point
            # stdout at /dev/null so that flushing it at exit cannot complain again.
            _silence_stdout()
            sys.exit(0)
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            # The last resort for a disk failure no layer below named (they name the path).
            error = local_io_error(
                _stdout_file(exc) if isinstance(exc, OSError) else None, exc,
                resumes=ctx.invoked_subcommand in _RESUMING,
            )
            if error is None:
                raise
            _silence_stdout()  # a full disk under stdout must not fail again at exit
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt as exc:
            said = _INTERRUPTED.get(ctx.invoked_subcommand or "", "Interrupted.")
            name = getattr(exc, "signal_name", None)  # SIGTERM: the same stop, exit 143
            if name:
                said = said.replace("Interrupted", f"Stopped by {name}", 1)
            click.echo(said, err=True)
            sys.exit(getattr(exc, "exit_code", 130))


# Commands that pick up where they stopped when run again (after Ctrl-C, or a full disk).
_RESUMING = {"crawl", "summarize", "sync"}


def _stdout_file(exc: OSError) -> str | None:
    """Standard output, named by its file, when it is a regular file (`> out.json`) on a disk
    that is full or read-only as `exc` says: where an unnamed write failed."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        real = os.path.realpath(f"/proc/self/fd/{fd}")
    except (OSError, ValueError, AttributeError):
        return None
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT) and nearly_full(real)
    if full or (exc.errno == errno.EROFS and read_only_fs(real)):
        return f"standard output ({real})"
    return None


# What Ctrl-C leaves behind, per command: only some of them resume.
_RESUMES = "Interrupted; run the same command again to resume."
_INTERRUPTED = {
    "crawl": _RESUMES,
    "summarize": _RESUMES,
    "sync": _RESUMES,
    "export": "Interrupted; nothing was written (OUT appears only when complete): run the same "
              "command again to export from the start.",
    "demo": "Interrupted; the demo's temporary store is removed (run it again to start over).",
}


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (click's test runner): nothing will flush to a closed pipe


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="entrez-graph")
def main() -> None:
    """Crawl NCBI Entrez cross-references (ELink) into a graph database."""
    install_logging()


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        main.add_command(module.command)


_register()
