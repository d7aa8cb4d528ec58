"""The units of work passed from the scheduler through the pipeline to the committer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# A link name to fetch for one record: (linkname, dbto, listed by acheck)
LinkWant = tuple[str, str, bool]


@dataclass(slots=True)
class CheckTask:
    """Which link names do these records have: `acheck`, the named ones with --link (no
    request), or `all` (--discovery all: one db=all request answers the links themselves)."""

    db: str
    uids: list[str]
    discovery: str = "acheck"  # "acheck" | "named" | "all"


@dataclass(slots=True)
class FetchTask:
    """One request group: a plain link name, or every scored link name of a database."""

    db: str
    linkname: str | None  # None: neighbor_score
    dbto: str
    items: list[tuple[str, list[LinkWant]]]  # (uid, [(linkname, dbto, listed)])


@dataclass(slots=True)
class FetchResult:
    """What the requests of one FetchTask found, keyed by (uid, linkname)."""

    links: dict[tuple[str, str], list[tuple[str, str, int | None]]] = field(default_factory=dict)
    no_answer: set[tuple[str, str]] = field(default_factory=set)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: int = 0
    # (uid, linkname) -> when it was fetched, for answers a stored crawl already held
    fetched: dict[tuple[str, str], str] = field(default_factory=dict)


class CheckResult(NamedTuple):
    """acheck's answer for one CheckTask."""

    answers: dict  # uid -> IdLinkSet
    failed: dict[str, str]  # uid -> error
    requests: int
    fetched: dict[str, str] | None = None  # uid -> when, for checks a stored crawl held

@dataclass(slots=True)
class DiscoverResult:
    """--discovery all's answer for one CheckTask: what db=all said for the records it was
    asked about, and what a stored crawl already knew of the others."""

    outcome: Any  # BatchOutcome of the records asked
    offers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # uid -> link names
    links: dict[tuple[str, str], list[tuple[str, str, int | None]]] = field(default_factory=dict)
    fetched: dict[str, str] = field(default_factory=dict)  # uid -> when its check was fetched
    links_fetched: dict[tuple[str, str], str] = field(default_factory=dict)


Task = CheckTask | FetchTask
