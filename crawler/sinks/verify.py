"""What a store should hold (from the journal, up to a cursor) against what it really holds.

A cursor only says what a store *should* hold: LadybugDB was seen to lose committed rows after a
SIGKILL during its post-commit checkpoint and after a full disk while its cursor survived, and a
`query --write` can delete rows behind a sink's back. So every sink counts its real contents (one
cheap query per label and per link name) and compares them with `expected_counts`.

Counts compared, per store:
- `nodes[label]`: records of that Entrez database;
- `edges[linkname]`: links of that link name (duplicates would show as a surplus);
- `props[label]`: records carrying at least one of NODE_PROPERTIES (names from ESummary).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import NODE_PROPERTIES

if TYPE_CHECKING:
    from ..journal import Cursor, Journal

_LEADING_INT = re.compile(r"^\s*(\d{1,18})(?!\d)")


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows per label / link name; labels and link names with no rows are left out."""

    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)
    props: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"nodes": dict(self.nodes), "edges": dict(self.edges), "props": dict(self.props)}

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_edges(self) -> int:
        return sum(self.edges.values())


@dataclass(frozen=True, slots=True)
class Difference:
    """One label or link name whose real count is not the journal's."""

    kind: str  # "nodes", "edges" or "props"
    name: str  # the label (database) or link name
    expected: int
    actual: int

    def __str__(self) -> str:
        what = {"nodes": "records", "edges": "links", "props": "named records"}[self.kind]
        return f"{self.name} {what}: {self.actual} held, {self.expected} in the journal"


def _nonzero(counter: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counter.items()) if v}


def has_property_value(data: dict) -> bool:
    """True when a props row gives the node at least one non-NULL NODE_PROPERTIES value, as the
    stores coerce them (a year that is not a number is NULL; lists become strings)."""
    for key, kind in NODE_PROPERTIES.items():
        value = data.get(key)
        if value is None:
            continue
        if kind == "INT64":
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or _LEADING_INT.match(str(value)):
                return True
            continue
        return True
    return False


def expected_counts(journal: Journal, cursor: Cursor) -> Counts:
    """What a store holding every journal row up to `cursor` must contain."""
    nodes = dict(
        journal.execute(
            "SELECT db, count(*) FROM nodes WHERE id <= ? GROUP BY db", (cursor.node,)
        ).fetchall()
    )
    edges = dict(
        journal.execute(
            "SELECT linkname, count(*) FROM edges WHERE id <= ? GROUP BY linkname", (cursor.edge,)
        ).fetchall()
    )
    props: Counter[str] = Counter()
    # A props row counts only for a record the store holds (its node row is within the cursor).
    rows = journal.execute(
        "SELECT p.db, p.data FROM props p JOIN nodes n ON n.db = p.db AND n.uid = p.uid "
        "WHERE p.id <= ? AND n.id <= ?",
        (cursor.prop, cursor.node),
    )
    for db, data in rows:
        if has_property_value(json.loads(data)):
            props[db] += 1
    return Counts(_nonzero(nodes), _nonzero(edges), _nonzero(props))


def compare(expected: Counts, actual: Counts) -> list[Difference]:
    """Every label / link name whose counts differ, nodes first, then edges, then props."""
    out: list[Difference] = []
    for kind in ("nodes", "edges", "props"):
        want: dict[str, int] = getattr(expected, kind)
        have: dict[str, int] = getattr(actual, kind)
        for name in sorted(set(want) | set(have)):
            if want.get(name, 0) != have.get(name, 0):
                out.append(Difference(kind, name, want.get(name, 0), have.get(name, 0)))
    return out


def describe(differences: list[Difference], most: int = 3) -> str:
    """A short one-line account of what differs."""
    shown = "; ".join(str(d) for d in differences[:most])
    more = len(differences) - most
    return shown + (f"; and {more} more" if more > 0 else "")
