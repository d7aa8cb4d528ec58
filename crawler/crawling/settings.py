"""The crawl's settings: what decides the graph; validated, stored, compared on resume."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..journal import Journal
from ..linknames import LinkFilter, check_db, is_hub
from ..seeds import parse_seeds
from ..store import StorePaths

SETTINGS_VERSION = 1
DEFAULT_BATCH = 200
DEFAULT_DEPTH = 1
MAX_BATCH = 500
# Counts and depths are stored in SQLite, whose integers are 64-bit.
MAX_COUNT = 2**62
# BFS levels: far beyond any useful crawl, and small enough for every estimate and store.
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    """What decides the graph; stored in the journal, compared on resume."""

    seed_specs: tuple[str, ...]
    query: str | None
    query_db: str | None
    depth: int
    filter: LinkFilter
    max_nodes: int | None
    max_links_per_record: int | None
    scores: bool
    expand_hubs: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": SETTINGS_VERSION,
            "seed_specs": list(self.seed_specs),
            "query": self.query,
            "query_db": self.query_db,
            "depth": self.depth,
            **self.filter.as_settings(),
            "max_nodes": self.max_nodes,
            "max_links_per_record": self.max_links_per_record,
            "scores": self.scores,
            "expand_hubs": self.expand_hubs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrawlSettings:
        return cls(
            seed_specs=tuple(d["seed_specs"]),
            query=d.get("query"),
            query_db=d.get("query_db"),
            depth=int(d["depth"]),
            filter=LinkFilter(
                tuple(d["links"]), tuple(d["exclude"]), tuple(d["to"]),
                bool(d["include_subsets"]),
            ),
            max_nodes=d.get("max_nodes"),
            max_links_per_record=d.get("max_links_per_record"),
            scores=bool(d["scores"]),
            expand_hubs=bool(d["expand_hubs"]),
        )

    def initial_state(self, db: str, depth: int) -> str:
        """State of a record first seen at `depth`: expand it, or only record it."""
        if depth >= self.depth or (is_hub(db) and not self.expand_hubs):
            return "terminal"
        return "new"


def show_setting(value: Any) -> str:
    """A stored setting as the user types it (`none`, `on`, `a b`)."""
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


def build_settings(
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
) -> CrawlSettings:
    """Validated settings (BadInput on anything malformed); sends nothing, touches nothing."""
    specs = parse_seeds(seeds)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise BadInput(f"invalid --depth {depth!r}: must be a whole number >= 0")
    if depth > MAX_DEPTH:
        raise BadInput(
            f"invalid --depth {depth}: at most {MAX_DEPTH} (Entrez records are a few links apart: "
            "a crawl that deep has long reached every record its links can reach)"
        )
    for name, value in (("--max-nodes", max_nodes), ("--max-links-per-record",
                                                      max_links_per_record)):
        if value is not None and (not isinstance(value, int) or not 1 <= value <= MAX_COUNT):
            raise BadInput(f"invalid {name} {value!r}: must be a whole number >= 1")
    if query is not None:
        query = query.strip()
        if not query:
            raise BadInput("--query is empty")
        if query_db is None:
            raise BadInput("--query needs --query-db")
        query_db = check_db(query_db, "database in --query-db")
    elif query_db is not None:
        raise BadInput("--query-db needs --query")
    if not specs and query is None:
        raise BadInput("no seeds: give DB:UID arguments, --seeds-file or --query")
    flt = LinkFilter.build(links, exclude_links, to_dbs, include_subsets)
    return CrawlSettings(
        seed_specs=tuple(str(s) for s in specs),
        query=query,
        query_db=query_db,
        depth=depth,
        filter=flt,
        max_nodes=max_nodes,
        max_links_per_record=max_links_per_record,
        scores=bool(scores),
        expand_hubs=bool(expand_hubs),
    )


def check_batch_size(batch_size: Any) -> None:
    """BadInput unless 1 <= batch_size <= MAX_BATCH."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (
        1 <= batch_size <= MAX_BATCH
    ):
        raise BadInput(f"invalid --batch-size {batch_size!r}: must be 1..{MAX_BATCH}")


def stored_settings(store: str | Path) -> CrawlSettings | None:
    """The settings of the crawl held in `store`, if any (read-only; BadInput if unreadable)."""
    stored = Journal.inspect(StorePaths.of(Path(store)).journal) or {}
    raw = stored.get("settings")
    return CrawlSettings.from_dict(raw) if raw else None
