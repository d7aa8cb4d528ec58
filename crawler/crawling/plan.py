"""`crawl --dry-run`: the crawl that would run, and a rough estimate of its requests and time."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..linknames import HUB_DBS, is_hub, split_linkname
from .settings import CrawlSettings

# What an average record is assumed to bring (the real fan-out is unknown until acheck
# answers): link names per record when acheck chooses, new records per record.
ASSUMED_LINKNAMES = 8
ASSUMED_FANOUT = 20


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_plan(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], batch_size: int,
    rps: float, resumes: bool,
) -> Plan:
    """The crawl that would run and a rough request count (later levels depend on fan-out)."""
    flt = settings.filter
    dbs = sorted({db for db, _ in seeds})
    if flt.named:
        sources = sorted({pair[0] for pair in map(split_linkname, flt.links) if pair})
        per_db: dict[str, list[str]] = {
            db: [ln for ln, _ in flt.named_for(db)] for db in sources
        }
        link_names: dict[str, list[str]] | str = per_db
        names_per_record = max(1.0, sum(len(v) for v in per_db.values()) / max(len(per_db), 1))
    else:
        link_names = "whatever acheck lists for each record, after the filters"
        names_per_record = float(ASSUMED_LINKNAMES)
    requests = 0.0
    records = float(len(seeds))
    total = records
    for level in range(settings.depth):
        expandable = records if level else sum(
            1 for db, _ in seeds if not (is_hub(db) and not settings.expand_hubs)
        )
        batches = math.ceil(expandable / batch_size) if expandable else 0
        requests += batches * ((0 if flt.named else 1) + names_per_record)
        records = expandable * ASSUMED_FANOUT
        if settings.max_nodes is not None:
            records = max(min(records, settings.max_nodes - total), 0)
        total += records
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
            f"level 0 is exact for --link; later levels assume ~{ASSUMED_FANOUT} new records per "
            f"record{'' if flt.named else f' and ~{ASSUMED_LINKNAMES} link names per record'}"
        ),
        resumes=resumes,
    )


def describe_plan(plan: Plan) -> str:
    """The plain-text plan printed by --dry-run."""
    if isinstance(plan.link_names, dict):
        links = "; ".join(f"{db}: {', '.join(v) or '(none)'}" for db, v in plan.link_names.items())
    else:
        links = plan.link_names
    lines = [
        f"Plan (dry run, nothing written to {plan.store}"
        + (", resuming the stored crawl)" if plan.resumes else ")"),
        f"  seeds:       {', '.join(plan.seeds)}",
        f"  databases:   {', '.join(plan.databases)}",
        f"  depth:       {plan.depth}",
        f"  link names:  {links}",
    ]
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
        f"  estimate:    ~{plan.estimated_requests} requests, ~{plan.estimated_seconds:g} s at "
        f"{plan.rps:g} requests/s, batches of {plan.batch_size} ({plan.assumptions})"
    )
    return "\n".join(lines)
