"""`crawl --dry-run`: the crawl that would run, and a rough estimate of its requests and time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..linknames import HUB_DBS, is_hub, is_scored, split_linkname
from .settings import CrawlSettings

# What a record is assumed to bring where nothing better is known: link names per record when
# acheck chooses and EInfo could not say, and new records per record and link name.
ASSUMED_LINKNAMES = 8
ASSUMED_FANOUT = 5
# No Entrez database holds more records than this: a deep estimate stops growing there (and the
# arithmetic stays finite for --depth 1000).
MAX_RECORDS_PER_DB = 10**9

LinkLists = Callable[[str], "list[tuple[str, str]] | None"]  # db -> EInfo (linkname, dbto)


@dataclass(slots=True)
class Plan:
    """What `--dry-run` prints: the crawl that would run, and a rough cost."""

    store: str
    seeds: list[str]
    databases: list[str]
    depth: int
    link_names: dict[str, list[str]] | str
    exclude: list[str]
    to: list[str]
    hub_databases: list[str]
    max_nodes: int | None
    max_links_per_record: int | None
    scores: bool
    batch_size: int
    rps: float
    estimated_requests: int
    estimated_seconds: float
    assumptions: str
    resumes: bool
    grows: str | None = None  # growing the stored crawl: what grows
    known_answers: int = 0  # answers the store holds, reused by the growth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Level:
    """What one level of the simulated crawl holds: records to check, links to fetch."""

    records: dict[str, float] = field(default_factory=dict)       # db -> records to expand
    pending: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (db, ln, to) -> n


def _names_for(settings: CrawlSettings, db: str, link_lists: LinkLists | None,
               unknown: set[str]) -> list[tuple[str, str]]:
    """The (linkname, dbto) pairs a crawl would fetch from records of `db`."""
    flt = settings.filter
    if flt.named:
        return flt.named_for(db)
    offered = link_lists(db) if link_lists is not None else None
    if offered is None:
        unknown.add(db)
        return [(f"{db}_assumed_{i}", "") for i in range(ASSUMED_LINKNAMES)]
    return flt.select(offered)


def _requests_for(settings: CrawlSettings, db: str, n: float, names: list[tuple[str, str]],
                  batch_size: int, *, check: bool, discovery: str = "acheck") -> float:
    """Requests for `n` records of `db` at one level: acheck batches (unless --link), one
    neighbor request per link name per batch, one neighbor_score per batch for scored names;
    with --discovery all, one db=all request per batch answers all of it."""
    batches = math.ceil(n / batch_size) if n > 0 else 0
    if discovery == "all" and check:
        return batches
    scored = [ln for ln, _ in names if settings.scores and is_scored(ln)]
    per_batch = (0 if settings.filter.named or not check else 1) + (len(names) - len(scored))
    return batches * (per_batch + (1 if scored else 0))


def _journal_levels(journal: Any, settings: CrawlSettings) -> dict[int, _Level]:
    """A stored crawl's work left, by level: records to check, links still to fetch."""
    levels: dict[int, _Level] = {}
    q = journal.execute
    for depth, db, n in q(
        "SELECT depth, db, count(*) FROM nodes WHERE state='new' GROUP BY depth, db"
    ).fetchall():
        levels.setdefault(depth, _Level()).records[db] = float(n)
    # a deeper --depth than the stored crawl's: its last level's records get expanded now
    for depth, db, n in q(
        "SELECT depth, db, count(*) FROM nodes WHERE state='terminal' AND depth < ? "
        "GROUP BY depth, db", (settings.depth,)
    ).fetchall():
        if not (is_hub(db) and not settings.expand_hubs):
            level = levels.setdefault(depth, _Level())
            level.records[db] = level.records.get(db, 0.0) + n
    for depth, db, ln, to, n in q(
        "SELECT n.depth, p.db, p.linkname, p.dbto, count(*) FROM pending_links p JOIN nodes n "
        "ON n.db = p.db AND n.uid = p.uid WHERE p.state='pending' "
        "GROUP BY n.depth, p.db, p.linkname, p.dbto"
    ).fetchall():
        levels.setdefault(depth, _Level()).pending[(db, ln, to)] = float(n)
    return levels


def make_plan(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], batch_size: int,
    rps: float, resumes: bool, *, link_lists: LinkLists | None = None, journal: Any = None,
    discovery: str = "acheck",
) -> Plan:
    """The crawl that would run and an estimate of the requests it sends.

    Level by level, per database: acheck batches (unless --link) and one neighbor request per
    link name per batch, the link names being those the filters keep of EInfo's list for the
    database (`link_lists`, asked once per database) or the named ones. New records per level
    are assumed (ASSUMED_FANOUT per record and link name); they matter only where a database
    fills more than one batch. A resumed crawl starts from what its journal (`journal`) still
    holds to do, so a complete store estimates 0.
    """
    flt = settings.filter
    dbs = sorted({db for db, _ in seeds})
    if flt.named:
        sources = sorted({pair[0] for pair in map(split_linkname, flt.links) if pair})
        link_names: dict[str, list[str]] | str = {
            db: [ln for ln, _ in flt.named_for(db)] for db in sources
        }
    else:
        link_names = "whatever acheck lists for each record, after the filters"

    def expandable(db: str) -> bool:
        return not (is_hub(db) and not settings.expand_hubs)

    if journal is not None and resumes:
        levels = _journal_levels(journal, settings)
        total = float(journal.execute("SELECT count(*) FROM nodes").fetchone()[0])
    else:
        first = _Level()
        for db, _ in seeds:
            if expandable(db):
                first.records[db] = first.records.get(db, 0.0) + 1
        levels = {0: first} if settings.depth > 0 else {}
        total = float(len(seeds))
    unknown: set[str] = set()
    names: dict[str, list[tuple[str, str]]] = {}
    requests = 0.0
    level = min(levels) if levels else settings.depth
    while level < settings.depth and levels:
        work = levels.pop(level, _Level())
        before = requests
        arriving: dict[str, float] = {}
        for db, n in sorted(work.records.items()):
            if n <= 0:
                continue
            if db not in names:
                names[db] = _names_for(settings, db, link_lists, unknown)
            requests += _requests_for(settings, db, n, names[db], batch_size, check=True,
                                      discovery=discovery)
            for _, to in names[db]:
                arriving[to] = arriving.get(to, 0.0) + n * ASSUMED_FANOUT
        by_db: dict[str, list[tuple[str, str]]] = {}
        for (db, ln, to), n in sorted(work.pending.items()):
            by_db.setdefault(db, []).append((ln, to))
            arriving[to] = arriving.get(to, 0.0) + n * ASSUMED_FANOUT
        for db, pairs in by_db.items():
            n = max(work.pending[(db, ln, to)] for ln, to in pairs)
            requests += _requests_for(settings, db, n, pairs, batch_size, check=False)
        if level + 1 >= settings.depth:
            break
        nxt = levels.setdefault(level + 1, _Level())
        room = None if settings.max_nodes is None else max(settings.max_nodes - total, 0.0)
        for to, n in sorted(arriving.items()):
            if not to or not expandable(to):
                continue
            n = min(n, MAX_RECORDS_PER_DB)
            if room is not None:
                n = min(n, room)
                room -= n
            nxt.records[to] = nxt.records.get(to, 0.0) + n
            total += n
        level += 1
        if nxt.records == work.records and not work.pending and not nxt.pending:
            # every database saturated: each further level costs the same (any --depth)
            requests += (requests - before) * (settings.depth - level)
            break
        if not any(v > 0 for v in nxt.records.values()) and not nxt.pending:
            levels.pop(level, None)
            if not levels:
                break
            level = min(levels)
    source = "the named link names" if flt.named else "EInfo's link list per database"
    if unknown:
        source += f" (~{ASSUMED_LINKNAMES} link names assumed for {', '.join(sorted(unknown))})"
    return Plan(
        store=str(root),
        seeds=[f"{db}:{uid}" for db, uid in seeds],
        databases=dbs,
        depth=settings.depth,
        link_names=link_names,
        exclude=list(flt.exclude),
        to=list(flt.to_dbs),
        hub_databases=[] if settings.expand_hubs else sorted(HUB_DBS),
        max_nodes=settings.max_nodes,
        max_links_per_record=settings.max_links_per_record,
        scores=settings.scores,
        batch_size=batch_size,
        rps=rps,
        estimated_requests=math.ceil(requests),
        estimated_seconds=round(requests / rps, 1) if rps else 0.0,
        assumptions=(
            f"link names from {source}; ~{ASSUMED_FANOUT} new records per record and link "
            "name" + ("; what the store's journal has left to do" if resumes else "")
        ),
        resumes=resumes,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:,.0f} h"
    if seconds < 3 * 365 * 86400:
        return f"{seconds / 86400:,.0f} days"
    return f"{seconds / (365 * 86400):,.0f} years"


def growth_plan(
    plan: Plan, stored_estimate: int, journal: Any, grows: str, fresh_after: str | None
) -> Plan:
    """A growth's plan: the new settings' estimate less the stored settings' one (what the
    store already knows, under the same assumptions), the latter in the share of the stored
    answers still fresh (a refresh asks the aged ones again)."""
    from .answers import count_answers

    total, known = count_answers(journal, fresh_after) if journal is not None else (0, 0)
    share = known / total if total else 0.0
    saved = int(stored_estimate * share)
    plan.estimated_requests = max(plan.estimated_requests - saved, 0)
    plan.estimated_seconds = plan.estimated_requests / plan.rps if plan.rps else 0.0
    plan.assumptions += f"; less ~{saved:,} for what the store knows"
    plan.grows = grows
    plan.known_answers = known
    plan.resumes = True
    return plan


def describe_plan(plan: Plan) -> str:
    """The plain-text plan printed by --dry-run."""
    if isinstance(plan.link_names, dict):
        links = "; ".join(f"{db}: {', '.join(v) or '(none)'}" for db, v in plan.link_names.items())
    else:
        links = plan.link_names
    lines = [
        f"Plan (dry run, nothing written to {plan.store}"
        + (", growing the stored crawl)" if plan.grows else
           ", resuming the stored crawl)" if plan.resumes else ")"),
        f"  seeds:       {', '.join(plan.seeds)}",
        f"  databases:   {', '.join(plan.databases)}",
        f"  depth:       {plan.depth}",
        f"  link names:  {links}",
    ]
    if plan.grows:
        lines.append(f"  grows:       {plan.grows}")
        lines.append(f"  reuses:      {plan.known_answers:,} answers the store holds (never "
                     "asked again)")
    if plan.exclude:
        lines.append(f"  excluded:    {', '.join(plan.exclude)}")
    if plan.to:
        lines.append(f"  to:          {', '.join(plan.to)}")
    if plan.hub_databases:
        lines.append(f"  not expanded (hubs): {', '.join(plan.hub_databases)}")
    caps = []
    if plan.max_nodes is not None:
        caps.append(f"max {plan.max_nodes} records")
    if plan.max_links_per_record is not None:
        caps.append(f"top {plan.max_links_per_record} links per record and link name")
    if caps:
        lines.append(f"  caps:        {', '.join(caps)}")
    lines.append(
        f"  estimate:    ~{plan.estimated_requests:,} requests, "
        f"~{_duration(plan.estimated_seconds)} at "
        f"{plan.rps:g} requests/s, batches of {plan.batch_size} ({plan.assumptions})"
    )
    return "\n".join(lines)
