"""The units of work passed from the scheduler through the pipeline to the committer."""

from __future__ import annotations

from dataclasses import dataclass, field

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


# acheck's answer for one CheckTask: (answers by uid, failed uid -> error, requests sent)
CheckResult = tuple[dict, dict[str, str], int]

Task = CheckTask | FetchTask
