"""`crawl(...)`: the Python function behind `entrez-graph crawl`.

Everything is validated and the seeds resolved before the store is created or changed; then the
store is locked, the settings stored (or compared), and the crawler runs into the journal and
its sinks.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, NCBIError, SettingsMismatch
from ..journal import Journal
from ..linknames import SUBSETS, is_hub, split_linkname
from ..progress import NullProgress, Progress
from ..seeds import parse_seeds, resolve_seeds
from ..store import StorePaths
from . import grow
from .answers import AnswerCache, ensure_tables
from .crawler import DISCOVERY, Crawler
from .grow import GROWING_KEY, Growth, plan_growth, refresh_cutoff
from .lock import StoreLock, check_store_path
from .pipeline import Client
from .plan import Plan, growth_plan, make_plan
from .report import CrawlReport, build_report
from .settings import (
    DEFAULT_BATCH,
    DEFAULT_DEPTH,
    CrawlSettings,
    build_settings,
    check_batch_size,
)
from .syncer import BackgroundSync

if TYPE_CHECKING:
    from ..sinks import Sink, SyncReport


@dataclass(slots=True)
class Neo4jTarget:
    uri: str
    user: str | None = None
    password: str | None = None
    database: str | None = None


def open_sinks(store: Path, *, embedded: bool, neo4j: Any = None) -> list[Sink]:
    """The embedded store (LadybugDB) unless disabled, plus a connected Neo4j sink if any."""
    sinks: list[Sink] = []
    if embedded:
        from ..sinks.ladybug import LadybugSink

        sinks.append(LadybugSink(StorePaths.of(store).graph))
    if neo4j is not None:
        sinks.append(neo4j)
    return sinks


def connect_neo4j(target: Neo4jTarget) -> Any:
    """Connect before anything is written: wrong credentials or no server -> BadInput (exit 2)."""
    from ..sinks.neo4j import Neo4jSink

    return Neo4jSink.connect(target.uri, target.user, target.password, target.database)


def crawl(
    store: str | Path,
    seeds: Iterable[str] = (),
    *,
    query: str | None = None,
    query_db: str | None = None,
    depth: int = DEFAULT_DEPTH,
    links: Iterable[str] = (),
    exclude_links: Iterable[str] = (),
    to_dbs: Iterable[str] = (),
    max_nodes: int | None = None,
    max_links_per_record: int | None = None,
    scores: bool = False,
    expand_hubs: bool = False,
    include_subsets: bool = False,
    batch_size: int = DEFAULT_BATCH,
    summaries: bool = False,
    embedded: bool = True,
    neo4j: Neo4jTarget | None = None,
    sinks: Sequence[Sink] | None = None,
    client: Client | None = None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    workers: int | None = None,
    discovery: str = "acheck",
    progress: Progress | None = None,
    switch_endpoint: bool = False,
    refresh: str | None = None,
) -> CrawlReport | Plan:
    """Crawl (or resume crawling) `store` from seeds; returns the report, or the plan if dry_run.

    Everything is validated and the seeds resolved before the store is created or changed.
    `sinks` overrides the default sinks (embedded store unless `embedded=False`, plus Neo4j when
    `neo4j` is given). `client` defaults to `EutilsClient.from_env(eutils_url, email, rps)`.
    `workers` fixes the number of requests in flight; by default it follows the rate and the
    latency the crawl observes (crawling.pipeline). `discovery="all"` learns each batch's link
    names and links with one `cmd=neighbor&db=all` request instead of acheck plus one request per
    link name; the graph is the same, so it is not a stored setting.

    The E-utilities endpoint (its URL, never the key) is stored with the settings: resuming
    without `eutils_url` asks the same endpoint again, and another endpoint on an existing store
    is refused (SettingsMismatch) unless `switch_endpoint`.

    Settings wider than the stored crawl's (deeper, more seeds, link names or databases, fewer
    exclusions, larger caps) grow it into exactly the graph a fresh crawl with them would give,
    asking only for what the store does not know (grow.py); narrower ones are refused.
    `refresh` (an age: `30d`) asks again for the answers fetched longer ago than that.
    """
    started = time.monotonic()
    settings = build_settings(
        seeds, query=query, query_db=query_db, depth=depth, links=links,
        exclude_links=exclude_links, to_dbs=to_dbs, max_nodes=max_nodes,
        max_links_per_record=max_links_per_record, scores=scores, expand_hubs=expand_hubs,
        include_subsets=include_subsets,
    )
    check_batch_size(batch_size)
    if discovery not in DISCOVERY:
        raise BadInput(f"invalid --discovery {discovery!r}: expected one of {', '.join(DISCOVERY)}")
    if not str(store).strip():  # Path("") is the current directory: never crawl into it unasked
        raise BadInput("--store is empty: give a directory for the crawl's journal and graph")
    root = Path(store)
    check_store_path(root)
    stored = Journal.inspect(StorePaths.of(root).journal) or {}
    previous = stored.get("settings")
    growth = None
    if previous:
        growth = plan_growth(root, CrawlSettings.from_dict(previous), settings, refresh,
                             stored.get(GROWING_KEY))
    elif refresh is not None:
        refresh_cutoff(refresh)
        raise BadInput(f"--refresh needs a stored crawl to refresh: {root} holds none")

    progress = progress or NullProgress()
    own_client = client is None
    stored_endpoint = stored.get("endpoint") if previous else None
    if client is None:
        from ..eutils.client import EutilsClient

        if stored_endpoint and not (eutils_url or os.environ.get("ENTREZ_GRAPH_EUTILS_URL")):
            eutils_url = stored_endpoint  # `crawl --store DIR` resumes where it crawled from
        client = EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps)
    endpoint = endpoint_of(client)
    if stored_endpoint and endpoint and endpoint != stored_endpoint and not switch_endpoint:
        if own_client:
            client.close()  # type: ignore[attr-defined]
        raise SettingsMismatch(
            f"store {root} was crawled from E-utilities at {stored_endpoint}, not {endpoint}: "
            "resuming against another endpoint would mix two sources into one graph. Give "
            f"--eutils-url {stored_endpoint} (or no --eutils-url), use another --store, or "
            "pass --switch-endpoint to go on from the new endpoint"
        )
    neo4j_sink = None
    try:
        sent_before = client.requests_sent
        if previous:  # resuming: the seeds as resolved when the crawl started
            resolved = [tuple(s) for s in stored["seeds"]]
            if growth is not None and (growing := stored.get(GROWING_KEY)):
                resolved = [tuple(s) for s in growing["seeds"]]
            elif growth is not None:  # more seeds: resolved after the stored ones
                old = set(CrawlSettings.from_dict(previous).seed_specs)
                extra = [s for s in settings.seed_specs if s not in old]
                if extra:
                    more = resolve_seeds(parse_seeds(extra), client)
                    resolved += [s for s in more if s not in set(resolved)]
        else:
            try:
                resolved = resolve_seeds(
                    parse_seeds(settings.seed_specs), client, query=settings.query,
                    query_db=settings.query_db,
                )
            except BadInput:
                # No network is not bad input: say so once, exit 1 (seeds report lookups
                # that failed as bad seeds)
                unreachable = getattr(client, "unreachable", None)
                if unreachable is not None:
                    raise unreachable from None
                raise
        _notes(settings, resolved, progress)
        if dry_run:
            rate = float(getattr(client, "rps", 0) or rps or 3.0)
            return _plan(root, settings, resolved, batch_size, rate, bool(previous), client,
                         growth, discovery)
        if sinks is None and neo4j is not None:
            neo4j_sink = connect_neo4j(neo4j)
        return _run(
            root, settings, resolved, client, batch_size=batch_size, workers=workers,
            discovery=discovery, progress=progress, sinks=sinks, embedded=embedded,
            neo4j_sink=neo4j_sink, summaries=summaries, retry_failed=retry_failed, started=started,
            seed_requests=client.requests_sent - sent_before, endpoint=endpoint, growth=growth,
        )
    finally:
        if own_client:
            client.close()  # type: ignore[attr-defined]


def unreachable_links(settings: CrawlSettings, seeds: list[tuple[str, str]]) -> list[str]:
    """The --link names whose source database no record of the crawl can be in before its last
    level: the seeds' databases, then those the named link names lead to, level by level."""
    flt = settings.filter
    if not flt.named:
        return []
    reached: set[str] = set()
    frontier = {db for db, _ in seeds}
    for _ in range(min(settings.depth, len(flt.links) + 1)):
        frontier -= reached
        if not frontier:
            break
        frontier = {db for db in frontier if not (is_hub(db) and not settings.expand_hubs)}
        reached |= frontier  # records of these databases get expanded at some level
        frontier = {to for db in frontier for _, to in flt.named_for(db)}
    return [ln for ln in flt.links
            if (pair := split_linkname(ln)) and pair[0] not in reached]


def endpoint_of(client: Any) -> str | None:
    """The E-utilities base URL a client asks, as stored: never a key (redacted if one was
    written into the URL itself)."""
    url = getattr(client, "base_url", None)
    if not isinstance(url, str) or not url:
        return None
    from ..eutils.redact import redact

    return redact(url if url.endswith("/") else url + "/")


def _plan(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], batch_size: int,
    rate: float, resumes: bool, client: Client, growth: Growth | None = None,
    discovery: str = "acheck",
) -> Plan:
    """The dry run's plan: EInfo's link list per database (one request each, at most) feeds the
    estimate, and a resumed crawl's journal says what is left."""
    cache: dict[str, list[tuple[str, str]] | None] = {}
    failed: list[str] = []

    def link_lists(db: str) -> list[tuple[str, str]] | None:
        if db not in cache:
            einfo = getattr(client, "einfo", None)
            if einfo is None or failed:  # E-utilities unreachable: do not ask it again
                cache[db] = None
                return None
            try:
                info = einfo(db)
                cache[db] = [(link.name, link.dbto) for link in info.links] if info else None
            except (NCBIError, BadInput) as exc:
                failed.append(str(exc))
                cache[db] = None  # the estimate assumes a number of link names instead
        return cache[db]

    if growth is not None:  # a fresh crawl's estimate, less what the store already knows
        return _growth_estimate(root, growth, seeds, batch_size, rate, link_lists,
                                discovery=discovery)
    if not resumes:
        return make_plan(root, settings, seeds, batch_size, rate, resumes, link_lists=link_lists,
                         discovery=discovery)
    with Journal(StorePaths.of(root).journal, create=False, read_only=True) as journal:
        return make_plan(root, settings, seeds, batch_size, rate, resumes,
                         link_lists=link_lists, journal=journal, discovery=discovery)


def _growth_estimate(
    root: Path, growth: Growth, seeds: list[tuple[str, str]], batch_size: int, rate: float,
    link_lists: Any = None, journal: Journal | None = None, discovery: str = "acheck",
) -> Plan:
    """The growth's plan: the new settings' estimate less the stored settings' one."""
    with contextlib.ExitStack() as stack:
        if journal is None:
            journal = stack.enter_context(
                Journal(StorePaths.of(root).journal, create=False, read_only=True))
        stored = journal.settings() or {}
        old = CrawlSettings.from_dict(stored["settings"])
        old_seeds = [tuple(s) for s in stored.get("seeds", [])]
        plan = make_plan(root, growth.settings, seeds, batch_size, rate, False,
                         link_lists=link_lists, discovery=discovery)
        before = make_plan(root, old, old_seeds, batch_size, rate, False, link_lists=link_lists,
                           discovery=discovery)
        kept = journal.execute("SELECT 1 FROM sqlite_master WHERE name='answers'").fetchone() \
            and "fetched" in {r[1] for r in journal.execute("PRAGMA table_info(pending_links)")}
        return growth_plan(plan, before.estimated_requests, journal if kept else None,
                           growth.describe(), growth.fresh_after)


def _notes(settings: CrawlSettings, seeds: list[tuple[str, str]], progress: Progress) -> None:
    """Say once what the defaults leave out (subset link names, hub seeds)."""
    flt = settings.filter
    skipped = [ln for ln in flt.links if SUBSETS.get(ln) in flt.links]
    if skipped and not flt.include_subsets:
        progress.note(
            f"note: {', '.join(skipped)} skipped beside {SUBSETS[skipped[0]]} (a subset of "
            "it); add --include-subsets to follow both"
        )
    unused = unreachable_links(settings, seeds)
    if unused:
        shown = "; ".join(f"{ln} starts from {split_linkname(ln)[0]}"  # type: ignore[index]
                          for ln in unused[:5]) + ("; …" if len(unused) > 5 else "")
        progress.note(
            f"Warning: {len(unused)} of {len(flt.links)} --link names can never be followed: "
            f"{shown}, a database no seed is in and the other --link names do not reach "
            f"within --depth {settings.depth}"
        )
    for db, _ in seeds:
        if is_hub(db) and not settings.expand_hubs and settings.depth > 0:
            progress.note(
                f"note: seeds in hub database {db} are recorded, not expanded "
                "(add --expand-hubs to expand them)"
            )
            break


def _run(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], client: Client, *,
    batch_size: int, workers: int | None, discovery: str, progress: Progress,
    sinks: Sequence[Sink] | None, embedded: bool, neo4j_sink: Any, summaries: bool,
    retry_failed: bool, started: float, seed_requests: int = 0, endpoint: str | None = None,
    growth: Growth | None = None,
) -> CrawlReport:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create store {root}: {exc.strerror or exc}") from None
    lock = StoreLock(root)
    try:
        lock.acquire()
    except BaseException:
        if neo4j_sink is not None:
            neo4j_sink.close()
        raise
    journal: Journal | None = None
    syncer: BackgroundSync | None = None
    crawler: Crawler | None = None
    run_id: int | None = None
    error: BaseException | None = None
    try:
        journal = Journal(StorePaths.of(root).journal)
        with journal.transaction():
            stored = journal.settings()
            if stored:  # checked again under the lock
                again = plan_growth(root, CrawlSettings.from_dict(stored["settings"]), settings,
                                    growth.refresh if growth else None, stored.get(GROWING_KEY))
                if (again and again.settings) != (growth and growth.settings):
                    raise SettingsMismatch(f"store {root} changed while this crawl started")
                if endpoint and stored.get("endpoint") != endpoint:
                    # a store from before endpoints were kept, or --switch-endpoint
                    journal.set_settings({**stored, "endpoint": endpoint})
            else:
                journal.set_settings(
                    {"settings": settings.as_dict(), "seeds": [list(s) for s in seeds],
                     **({"endpoint": endpoint} if endpoint else {})}
                )
        run_id = journal.start_run(  # the crawl's history; its end is recorded below
            growth.kind if growth is not None else "resume" if stored else "crawl",
            {**settings.as_dict(), **({"endpoint": endpoint} if endpoint else {})},
        )
        # Every sink is made, used and closed on the sinks' thread; the caller's own sinks
        # (`sinks=`) are used there too, and left open.
        openers: list[Callable[[], Sink]] = []
        close: list[bool] = []
        if sinks is None:
            if embedded:
                graph = StorePaths.of(root).graph
                openers.append(lambda: _ladybug(graph))
                close.append(True)
            if neo4j_sink is not None:
                openers.append(lambda s=neo4j_sink: s)
                close.append(True)
                neo4j_sink = None  # closed on the sinks' thread from now on
        else:
            openers += [lambda s=s: s for s in sinks]
            close += [False] * len(sinks)
        if openers:
            syncer = BackgroundSync(journal.path, openers, close=close, progress=progress)
            syncer.start()
        if growth is None and GROWING_KEY not in (journal.settings() or {}):
            grow.discard(root)  # a growth applied just before a kill left its journal beside
        if growth is not None:
            beside: list[Crawler] = []  # the growth's crawler, for the history's request count
            try:
                return _grow(
                    root, journal, growth, seeds, client, syncer, batch_size=batch_size,
                    workers=workers, discovery=discovery, progress=progress,
                    summaries=summaries, retry_failed=retry_failed, started=started,
                    seed_requests=seed_requests, made=beside.append,
                )
            finally:
                crawler = beside[0] if beside else None
        crawler = Crawler(
            journal, client, settings, batch_size=batch_size, workers=workers,
            discovery=discovery, progress=progress, syncer=syncer,
        )
        crawler.add_seeds(seeds)
        if seed_requests:  # the ESearch lookups that resolved the seeds, sent before the journal
            journal.count_request("esearch", seed_requests)
        crawler.requests_before = seed_requests
        if retry_failed:
            crawler.retry_failed()
        try:
            crawler.run()
        except NCBIError:
            crawler.finish_sinks()  # keep the stores as far as the journal got
            raise
        summary_info = None
        if summaries:
            summary_info = _summaries(journal, client, progress)
        crawler.finish_sinks()
        progress.close()
        return build_report(
            root, settings, seeds, journal, crawler.requests, crawler.last_reports, started,
            summary_info,
        )
    except BaseException as exc:
        error = exc
        raise
    finally:
        if syncer is not None:
            syncer.close()
        if neo4j_sink is not None:
            neo4j_sink.close()
        if journal is not None:
            if run_id is not None:
                sent = crawler.requests if crawler is not None else seed_requests
                journal.finish_run(run_id, requests=sent, error=error)
            journal.close()
        lock.release()


def _grow(
    root: Path, journal: Journal, growth: Growth, seeds: list[tuple[str, str]], client: Client,
    syncer: BackgroundSync | None, *, batch_size: int, workers: int | None, discovery: str,
    progress: Progress, summaries: bool, retry_failed: bool, started: float,
    seed_requests: int, made: Callable[[Crawler], None] = lambda crawler: None,
) -> CrawlReport:
    """The wider (or refreshed) crawl, computed beside the stored one from what it knows, then
    applied to it; the sinks follow once it is applied."""
    stored = CrawlSettings.from_dict((journal.settings() or {})["settings"])
    ensure_tables(journal, uncapped=stored.max_nodes is None
                  and stored.max_links_per_record is None)
    rate = float(getattr(client, "rps", 0) or 3.0)
    estimate = _growth_estimate(root, growth, seeds, batch_size, rate, journal=journal,
                                discovery=discovery)
    beside = grow.start(journal, growth, seeds)
    cache = AnswerCache(journal.path, growth.fresh_after)
    progress.note(
        f"growing {root}: {growth.describe()}; the {estimate.known_answers:,} answers it holds"
        f"{' (fresh enough)' if growth.fresh_after else ''} are reused, only the rest is asked: "
        f"~{estimate.estimated_requests:,} requests (rough estimate)"
    )
    try:
        crawler = Crawler(
            beside, client, growth.settings, batch_size=batch_size, workers=workers,
            discovery=discovery, progress=progress, cache=cache,
        )
        made(crawler)
        crawler.add_seeds(seeds)
        if seed_requests:
            beside.count_request("esearch", seed_requests)
        crawler.requests_before = seed_requests
        if retry_failed:
            crawler.retry_failed()
        crawler.run()
    except BaseException:
        beside.close()
        raise
    finally:
        cache.close()
    applied = grow.apply(journal, beside, growth, grow.growing_state(journal)["started"])
    grow.discard(root)
    progress.note(
        f"grown: {applied.nodes_added:,} records and {applied.edges_added:,} links added, "
        f"{applied.nodes_removed:,} records and {applied.edges_removed:,} links removed, "
        f"{applied.nodes_updated:,} records updated; {cache.hits:,} answers reused, "
        f"{crawler.requests:,} requests"
    )
    summary_info = None
    if growth.fresh_after:  # NCBI tells replaced and withdrawn records in their summaries
        aged = grow.unmark_aged_summaries(journal, growth.fresh_after)
        progress.note(f"refresh: asking ESummary for the {aged:,} records without a fresh "
                      "summary, to mark those NCBI replaced or withdrew")
    if summaries or growth.fresh_after:
        summary_info = _summaries(journal, client, progress)
    reports: dict[str, SyncReport] = {}
    if syncer is not None:
        progress.update(phase="syncing stores", force=True)
        syncer.request()
        reports = syncer.finish()
        progress.fields.pop("phase", None)
    progress.close()
    return build_report(root, growth.settings, seeds, journal, crawler.requests, reports,
                        started, summary_info)


def _ladybug(path: Path) -> Sink:
    from ..sinks.ladybug import LadybugSink

    return LadybugSink(path)


def _summaries(journal: Journal, client: Client, progress: Progress) -> dict[str, Any]:
    from ..summaries import summarize

    def show(done: int, total: int) -> None:
        progress.update(phase=f"summaries {done}/{total}")

    report = summarize(journal, client, progress=show)
    progress.fields.pop("phase", None)
    return report.as_dict()
