"""Bringing stores level with a journal: `sync`, and `summarize` (ESummary, then sync).

The Python side of `entrez-graph sync` and `entrez-graph summarize`. The journal is the single
source of truth; each sink starts from its own cursor and writes idempotently, so calling these
again (or after a crash or an outage) pushes only what is still missing. Neither function raises
because a store stayed behind: the reports say so (`SyncReport.ok`), and `check_synced` turns
that into `SyncIncomplete` (exit 3 in the CLI) for callers that want an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput, StoreError
from .eutils.client import client_for
from .journal import Journal
from .linknames import check_db
from .store import StorePaths

if TYPE_CHECKING:
    from .eutils.client import EutilsClient
    from .sinks import Sink, SyncReport
    from .sinks.neo4j import Neo4jConfig
    from .summaries import SummaryReport


class SyncIncomplete(StoreError):
    """A sink could not take everything (exit 3, as `crawl` does when a sink is behind)."""

    exit_code = 3


def existing_store(store: str | Path) -> StorePaths:
    """The store's paths; never creates a store (a mistyped path is an error, not a new store)."""
    paths = StorePaths.of(store)
    if not paths.journal.is_file():
        raise BadInput(
            f"no entrez-graph store at {paths.root} (no {paths.journal.name}); "
            "crawl into it first or pass --store"
        )
    return paths


def neo4j_config(neo4j: str | Neo4jConfig | None) -> Neo4jConfig | None:
    """A URI (user, password, database from NEO4J_* env) or a ready config, as a config."""
    if neo4j is None or neo4j == "":
        return None
    from .sinks.neo4j import Neo4jConfig  # lazy: the driver is only needed for Neo4j

    if isinstance(neo4j, Neo4jConfig):
        return neo4j
    return Neo4jConfig.from_options(str(neo4j))


def _open_sinks(
    paths: StorePaths,
    stack: ExitStack,
    *,
    embedded: bool,
    neo4j: Neo4jConfig | None,
    neo4j_options: dict[str, Any],
) -> list[Sink]:
    """Every store asked for, each closed by `stack`; connecting is where Neo4j is refused."""
    sinks: list[Sink] = []
    if embedded:
        from .sinks.ladybug import LadybugSink  # lazy: LadybugDB loads a native library

        sinks.append(LadybugSink(paths.graph))
        stack.callback(sinks[-1].close)
    if neo4j is not None:
        from .sinks.neo4j import Neo4jSink

        sinks.append(Neo4jSink.from_config(neo4j, **neo4j_options))
        stack.callback(sinks[-1].close)
    return sinks


def sync(
    store: str | Path,
    *,
    neo4j: str | Neo4jConfig | None = None,
    embedded: bool = False,
    batch_size: int | None = None,
    fast: bool = True,
    bulk: bool = False,
    rebuild: bool = False,
) -> list[SyncReport]:
    """Bring each named store level with the journal of `store`; one report per store.

    `neo4j` is a URI (credentials from NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE) or a
    `Neo4jConfig`; `embedded` brings the LadybugDB store in step: it counts what the store
    really holds and repairs any difference from the journal; `rebuild=True` (embedded only)
    makes it anew from the journal first. `batch_size` is rows per Neo4j UNWIND statement
    (None: the sink's default); `fast=False` MERGEs every edge. Neo4j's real counts are then
    compared with the journal's and missing rows written again.
    `bulk` replaces the Neo4j database through `neo4j-admin database import` instead (a local,
    stopped server: crawler.sinks.neo4j_bulk); the next plain sync finishes it.
    """
    paths = existing_store(store)
    config = neo4j_config(neo4j)
    if rebuild:
        embedded = True
    if config is None and not embedded:
        raise BadInput("nothing to sync: pass --neo4j URI and/or --embedded")
    # verify: Neo4j's real counts are compared with the journal's at the end, and missing
    # rows written again (crawler.sinks.neo4j.Neo4jSink.verify_and_repair)
    if bulk:
        if config is None or embedded:
            raise BadInput("--bulk loads one Neo4j database: pass --neo4j URI, not --embedded")
        from .sinks.neo4j_bulk import bulk_load

        return [bulk_load(paths, config)]
    options: dict[str, Any] = {"fast": fast, "verify": True}
    if batch_size is not None:
        options["batch_size"] = batch_size
    reports: list[SyncReport] = []
    with Journal(paths.journal, create=False, migrate=True) as journal:
        # one store at a time, as before: the embedded store is written even if Neo4j is refused
        if embedded:
            with ExitStack() as stack:
                (sink,) = _open_sinks(paths, stack, embedded=True, neo4j=None, neo4j_options={})
                rebuilt = sink.rebuild(journal) if rebuild else 0
                report = sink.sync(journal)
                report.repaired += rebuilt
                reports.append(report)
        if config is not None:
            with ExitStack() as stack:
                (sink,) = _open_sinks(
                    paths, stack, embedded=False, neo4j=config, neo4j_options=options
                )
                reports.append(sink.sync(journal))
    return reports


def report_dict(report: SyncReport) -> dict[str, Any]:
    """One store's sync report as plain data (what `sync --format json` prints per store)."""
    return {
        "sink": report.sink,
        "nodes": report.nodes,
        "edges": report.edges,
        "props": report.props,
        "changes": report.changes,
        "pending": report.pending,
        "repaired": report.repaired,
        "error": report.error,
    }


def check_synced(reports: Iterable[SyncReport]) -> None:
    """Raise SyncIncomplete naming every store that is still behind its journal."""
    behind = [r for r in reports if not r.ok]
    if behind:
        reasons = "; ".join(
            f"{r.sink}: {r.pending} rows missing" + (f" ({r.error})" if r.error else "")
            for r in behind
        )
        raise SyncIncomplete(f"{reasons}; the journal keeps everything, run sync again later")


# -- summarize --------------------------------------------------------------------------------


@dataclass(slots=True)
class SummarizeResult:
    """What `summarize` fetched (per database) and how each store took the new properties."""

    report: SummaryReport
    stores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stores_ok(self) -> bool:
        return all(s["ok"] for s in self.stores)

    def as_dict(self) -> dict[str, Any]:
        """Plain data: what `summarize --format json` prints."""
        return {**self.report.as_dict(), "stores": list(self.stores)}


def summarize(
    store: str | Path,
    *,
    client: EutilsClient | None = None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
    batch_size: int | None = None,
    dbs: Iterable[str] = (),
    neo4j: str | Neo4jConfig | None = None,
    sync: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> SummarizeResult:
    """Fetch names and summaries (ESummary) of the records of `store`, then sync its stores.

    The journal gets the properties first; then the embedded store (when the crawl made one)
    and Neo4j (when `neo4j` is given) through their prop cursors, unless `sync=False`. Calling it
    again asks NCBI only about records that have no summary yet. `progress(done, total)` is
    called after each committed batch. Records left without an answer are counted in
    `result.report.deferred` (`crawler.summaries.check_complete` raises for them).
    """
    from .summaries import DEFAULT_BATCH
    from .summaries import summarize as summarize_journal

    paths = existing_store(store)
    chosen = tuple(check_db(d, "--db database") for d in dbs)
    config = neo4j_config(neo4j) if sync else None
    stores: list[dict[str, Any]] = []
    with ExitStack() as stack:
        # stores first: a locked store or an unreachable Neo4j is refused before any request
        sinks = (
            _open_sinks(paths, stack, embedded=paths.graph.exists(), neo4j=config,
                        neo4j_options={})
            if sync else []
        )
        journal = stack.enter_context(Journal(paths.journal, create=False, migrate=True))
        c = stack.enter_context(client_for(client, eutils_url, email, rps))
        report = summarize_journal(
            journal, c, batch_size=batch_size or DEFAULT_BATCH, dbs=chosen or None,
            progress=progress,
        )
        for sink in sinks:
            r = sink.sync(journal)
            stores.append(
                {"sink": r.sink, "props": r.props, "pending": r.pending, "error": r.error,
                 "ok": r.ok}
            )
    return SummarizeResult(report, stores)
