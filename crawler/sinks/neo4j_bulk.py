"""`sync --bulk`: load a new or empty Neo4j database with `neo4j-admin database import full`.

Live writes go through Bolt transactions; `neo4j-admin database import` writes the store files
directly and is the fastest way to load a big graph (BioCypher loads big graphs this way). It
applies only where neo4j-admin can reach the database files: a server on this machine, stopped,
with `neo4j-admin` at hand (NEO4J_ADMIN, $NEO4J_HOME/bin, or PATH). When any of that is not so,
it says which and changes nothing.

What is loaded: the journal as `export --format neo4j-csv` writes it, plus this journal's
cursor node (`EntrezGraphCursor`) stating the records and links it holds, so the next live
`sync` (after Neo4j is started) creates the constraints, writes the records' properties through
the live path (the CSV carries only NODE_PROPERTIES; the live path also keeps the other keys)
and compares the real counts with the journal's. The cursor is marked `shared` (MERGE from
then on) if the journal changed while it was exported, since rows past the cursor may then be
in the files.
"""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..journal import Journal
from . import SyncReport
from .neo4j import (
    CURSOR_LABEL,
    DRIVER_SETTINGS,
    Neo4jConfig,
    cursor_key,
    journal_id,
    pending_rows,
    quiet_driver_logging,
)

if TYPE_CHECKING:
    from ..store import StorePaths

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def cannot(reason: str) -> BadInput:
    return BadInput(f"sync --bulk cannot apply: {reason}; nothing was changed "
                    "(plain `sync` writes through the running server)")


def is_local(host: str) -> bool:
    """Whether `host` names this machine (loopback, or its own name or address)."""
    if host in _LOOPBACK:
        return True
    names = {socket.gethostname(), socket.getfqdn()}
    if host in names:
        return True
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return False
    if address.startswith("127."):
        return True
    try:
        return address in {socket.gethostbyname(n) for n in names}
    except OSError:
        return False


def find_neo4j_admin(env: dict[str, str] | None = None) -> str:
    """NEO4J_ADMIN, else $NEO4J_HOME/bin/neo4j-admin, else neo4j-admin on PATH."""
    env = dict(os.environ) if env is None else env
    candidates = [env.get("NEO4J_ADMIN")]
    if env.get("NEO4J_HOME"):
        candidates.append(str(Path(env["NEO4J_HOME"]) / "bin" / "neo4j-admin"))
    candidates.append(shutil.which("neo4j-admin", path=env.get("PATH")))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise cannot("neo4j-admin not found (set NEO4J_ADMIN to it, or NEO4J_HOME to the Neo4j "
                 "installation; with Docker, run import.sh of `export --format neo4j-csv` "
                 "inside the container)")


def check_stopped(config: Neo4jConfig) -> None:
    """neo4j-admin imports only into a stopped server: refuse when this one answers."""
    from neo4j.exceptions import AuthError, DriverError, Neo4jError

    from . import neo4j as live

    quiet_driver_logging()
    driver = live._driver_factory(config, **{**DRIVER_SETTINGS, "connection_timeout": 3.0})
    try:
        driver.verify_connectivity()
    except AuthError:
        pass  # it answered: running
    except (DriverError, Neo4jError, OSError):
        return  # nothing answers: stopped
    finally:
        driver.close()
    raise cannot(f"Neo4j at {config.uri} is running; stop it first (`neo4j stop`, or "
                 "`docker compose stop neo4j`): neo4j-admin imports into a stopped server only")


def _cursor_file(
    path: Path, jid: str, node: int, edge: int, shared: bool, change: int = 0
) -> None:
    """Our cursor node: the export read the journal's current rows, so it holds every change
    up to `change` (the newest before it started; later ones are applied by the next sync)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([f"journal:ID({CURSOR_LABEL})", "node:long", "edge:long", "prop:long",
                         "change:long", "shared:boolean"])
        writer.writerow([jid, node, edge, 0, change, "true" if shared else "false"])


def bulk_load(paths: StorePaths, config: Neo4jConfig) -> SyncReport:
    """Replace the database of `config` with the journal of `paths` through neo4j-admin.

    Returns a report whose `pending` counts what the next live `sync` still writes (the
    records' properties); `sink` is the name the live sink will use.
    """
    from urllib.parse import urlsplit

    from ..exporting import export

    host = urlsplit(config.uri).hostname or ""
    if not is_local(host):
        raise cannot(f"Neo4j at {config.uri} is not on this machine, and neo4j-admin must run "
                     "where the database files are (copy an `export --format neo4j-csv` there "
                     "and run its import.sh)")
    admin = find_neo4j_admin()
    check_stopped(config)
    database = config.database or "neo4j"
    work = Path(tempfile.mkdtemp(prefix=".neo4j-bulk-", dir=paths.root))
    try:
        with Journal(paths.journal, create=False) as journal:
            jid = journal_id(journal)
            before = journal.max_ids()
            report = export(paths.root, work / "csv", "neo4j-csv")
            after = journal.max_ids()
            cursor_csv = work / "cursor.csv"
            _cursor_file(cursor_csv, jid, before.node, before.edge, shared=after != before,
                         change=before.change)
            argv = shlex.split(report.command)
            argv[0], argv[4] = admin, database
            argv.append(f"--nodes={CURSOR_LABEL}={cursor_csv}")
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                said = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines()
                        if line.strip()]
                raise BadInput(f"neo4j-admin import into database {database!r} failed "
                               f"(exit {done.returncode}): {said[-1] if said else 'no output'}")
            from ..journal import Cursor

            held = Cursor(before.node, before.edge, 0, before.change)
            name = cursor_key(config.uri, database)
            journal.set_cursor(name, held)
            return SyncReport(sink=name, nodes=report.nodes, edges=report.edges,
                              pending=pending_rows(journal, held))
    finally:
        shutil.rmtree(work, ignore_errors=True)
