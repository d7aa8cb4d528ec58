"""What a store's journal holds, and how far each sink is behind it (`entrez-graph status`).

Read-only: the journal is opened without creating anything, so a mistyped store is an error,
never a new empty store. Safe while a crawl is writing (the journal is SQLite in WAL mode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BadInput, EntrezGraphError
from .journal import Journal, RunRow
from .sinks.verify import rows_behind
from .store import StorePaths

EMBEDDED = "embedded"


def _journal_sinks(journal: Journal) -> dict[str, dict[str, Any]]:
    """Sinks whose cursor the journal keeps (Neo4j, keyed by URI and database)."""
    return {sink: rows_behind(journal, cursor) for sink, cursor in journal.cursors().items()}


def _embedded_sink(journal: Journal, graph: Path) -> dict[str, Any] | None:
    """Rows the embedded store lacks by its cursor, and what it really holds, counted.

    None when there is no embedded store. A store that cannot be read now is reported, not
    raised, since the journal figures are still right."""
    if not graph.exists():
        return None
    try:
        from .sinks import ladybug as ladybug_sink

        seen = ladybug_sink.inspect_store(graph, journal)
    except EntrezGraphError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a LadybugDB failure we did not foresee: report it, one line
        return {"error": f"embedded store not readable now ({exc})".splitlines()[0]}
    return {**seen["behind"], "state": seen["state"], "held": seen["held"],
            "differences": seen["differences"]}


def _crawl_running(root: Path) -> bool:
    """Whether a crawl holds the store's lock now (`crawl.lock`, crawler.crawling.lock)."""
    import fcntl
    import os

    from .crawling.lock import LOCK_FILE

    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def _changed(before: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run that differ from the run before: {key: {"from": old, "to": new}}."""
    if before is None:
        return {}
    return {
        key: {"from": before.get(key), "to": now.get(key)}
        for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)
    }


def history(runs: list[RunRow], *, running: bool) -> list[dict[str, Any]]:
    """The crawl's runs for `status`: each with the settings that differ from the run before.

    A run that never ended is `killed`, except the last while a crawl holds the store
    (`running`)."""
    out: list[dict[str, Any]] = []
    before: dict[str, Any] | None = None
    for i, run in enumerate(runs):
        outcome = run.state
        if run.ended is None and run.outcome is None and running and i == len(runs) - 1:
            outcome = "running"
        out.append({
            "run": run.id, "kind": run.kind, "started": run.started, "ended": run.ended,
            "requests": run.requests, "outcome": outcome, "settings": run.settings,
            "changed": _changed(before, run.settings),
        })
        before = run.settings
    return out


def _growing(settings: dict | None) -> dict[str, Any] | None:
    from .crawling.grow import GROWING_KEY

    pending = (settings or {}).get(GROWING_KEY)
    if not pending:
        return None
    return {"kind": pending.get("kind"), "what": pending.get("described"),
            "since": pending.get("started")}


def status(store: str | Path, *, neo4j: Any = None) -> dict[str, Any]:
    """The journal's figures for `store` (records, edges, pending, failed, requests, sinks).

    With `neo4j` (a `crawler.sinks.neo4j.Neo4jConfig`) that database's entry holds its real
    counts against the journal's (`crawler.sinks.neo4j.status_of`), not only its cursor.
    `history` lists the crawl's runs (see `history`), oldest first."""
    paths = StorePaths.of(store)
    if not paths.journal.is_file():
        raise BadInput(
            f"no entrez-graph store at {paths.root} (no {paths.journal.name}); "
            "crawl into it first or pass --store"
        )
    with Journal(paths.journal, create=False) as journal:
        stats = journal.stats()
        requests = stats.get("requests", {})
        settings = journal.settings()
        named = journal.execute(
            "SELECT count(*) FROM props WHERE json_extract(data, '$.name') IS NOT NULL"
        ).fetchone()[0]
        runs = history(journal.runs(), running=_crawl_running(paths.root))
        sinks = _journal_sinks(journal)
        embedded = _embedded_sink(journal, paths.graph)
        if embedded is not None:
            sinks = {EMBEDDED: embedded, **sinks}
        if neo4j is not None:
            from .sinks.neo4j import status_of

            name, info = status_of(neo4j, journal)
            sinks[name] = info
    return {
        "store": str(paths.root),
        "nodes": stats["nodes"],
        "edges": stats["edges"],
        "by_db": stats["by_db"],
        "by_link": stats["by_link"],
        "pending": stats["pending"],
        "failed": stats["failed"],
        "no_answer": stats.get("no_answer", 0),
        "named": named,
        "requests": requests,
        "requests_sent": sum(requests.values()),
        "complete": stats["pending"] == 0 and stats["nodes"] > 0,
        "settings": settings,
        # a wider crawl or a refresh computed beside the stored one and not applied yet
        "growing": _growing(settings),
        "history": runs,
        "sinks": sinks,
    }
