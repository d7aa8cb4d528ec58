"""What a store should hold (from the journal, up to a cursor) against what it really holds.

A cursor only says what a store *should* hold: LadybugDB was seen to lose committed rows after a
SIGKILL during its post-commit checkpoint and after a full disk while its cursor survived, and a
`query --write` can delete rows behind a sink's back. So every sink counts its real contents (one
cheap query per label and per link name) and compares them with `expected_counts`.

Counts compared, per store:
- `nodes[label]`: records of that Entrez database;
- `edges[linkname]`: links of that link name (duplicates would show as a surplus);
- `props[label]`: property values (non-NULL NODE_PROPERTIES: names, organisms … from ESummary),
  so a cleared or added value shows as well as a lost record;
- `fetched[label or linkname]` (the embedded store, `fetched=True`): records and links with a
  `fetched` time, so a store that lacks them (made before provenance, or cleared) shows.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..journal import Cursor
from . import NODE_PROPERTIES

if TYPE_CHECKING:
    from ..journal import Journal

_LEADING_INT = re.compile(r"^(\d{1,18})(?!\d)")


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows per label / link name; labels and link names with no rows are left out."""

    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)
    props: dict[str, int] = field(default_factory=dict)
    fetched: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, int]]:
        out = {"nodes": dict(self.nodes), "edges": dict(self.edges), "props": dict(self.props)}
        if self.fetched:
            out["fetched"] = dict(self.fetched)
        return out

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_edges(self) -> int:
        return sum(self.edges.values())


@dataclass(frozen=True, slots=True)
class Difference:
    """One label or link name whose real count is not the journal's."""

    kind: str  # "nodes", "edges", "props" or "fetched"
    name: str  # the label (database) or link name
    expected: int
    actual: int

    def __str__(self) -> str:
        what = {"nodes": "records", "edges": "links", "props": "property values",
                "fetched": "fetched times"}[self.kind]
        return f"{self.name} {what}: {self.actual} held, {self.expected} in the journal"


def _nonzero(counter: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counter.items()) if v}


def coerce_property(value: Any, kind: str) -> Any:
    """A props value as a store column of type `kind` holds it; what does not fit is NULL.

    ESummary dates come as "2001", "2001/05/12" or "2001 May 12": an INT64 keeps the leading
    year. Lists become "; "-joined strings."""
    if value is None:
        return None
    if kind == "INT64":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**63 else None
        match = _LEADING_INT.match(str(value).strip())
        return int(match.group(1)) if match else None
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def expected_counts(journal: Journal, cursor: Cursor, *, fetched: bool = False) -> Counts:
    """What a store holding every journal row up to `cursor` must contain: the journal's rows
    up to it now, plus those it still holds because the journal removed them after its change
    cursor (read in one snapshot, so a removal committing meanwhile is counted once). With
    `fetched`, also the records and links that have a `fetched` time."""
    with journal.snapshot():
        current = Counts(
            records_between(journal, 0, cursor.node),
            links_between(journal, 0, cursor.edge),
            property_values(journal, cursor),
            fetched_between(journal, Cursor(), cursor) if fetched else {},
        )
        return with_pending(current, pending_removals(journal, cursor))


def pending_removals(journal: Journal, cursor: Cursor, upto: int | None = None) -> Counts:
    """Rows a store at `cursor` still holds that the journal has removed since: `edge-` and
    `node-` change rows past its change cursor (up to `upto`) naming rows within its bounds.
    `props` is left empty: a removed record's property values are gone from the journal, so
    with any of these pending the property values are not comparable (`props_comparable`)."""
    if not journal.has_changes:
        return Counts()
    top = f"AND id <= {int(upto)}" if upto is not None else ""
    nodes = journal.execute(
        f"SELECT db, count(*) FROM changes WHERE id > ? {top} AND kind = 'node-' "
        "AND row_id <= ? GROUP BY db",
        (cursor.change, cursor.node),
    ).fetchall()
    edges = journal.execute(
        f"SELECT linkname, count(*) FROM changes WHERE id > ? {top} AND kind = 'edge-' "
        "AND row_id <= ? GROUP BY linkname",
        (cursor.change, cursor.edge),
    ).fetchall()
    return Counts(_nonzero(dict(nodes)), _nonzero(dict(edges)), {})


def with_pending(current: Counts, pending: Counts) -> Counts:
    """`current` counts plus the rows of `pending` (what a lagging store still holds)."""
    if not pending.nodes and not pending.edges:
        return current
    nodes = Counter(current.nodes)
    nodes.update(pending.nodes)
    edges = Counter(current.edges)
    edges.update(pending.edges)
    fetched = Counter(current.fetched)  # a removed row had its time (the store still holds it)
    if current.fetched:
        fetched.update(pending.nodes)
        fetched.update(pending.edges)
    return Counts(_nonzero(nodes), _nonzero(edges), current.props, _nonzero(fetched))


def fetched_between(journal: Journal, after: Cursor, upto: Cursor) -> dict[str, int]:
    """Records per database and links per link name with a `fetched` time, of the row ids in
    (after, upto] (none in a journal from before time stamps)."""
    if not getattr(journal, "has_fetched", True):
        return {}
    counts: Counter[str] = Counter()
    for sql, lo, hi in (
        ("SELECT db, count(fetched) FROM nodes WHERE id > ? AND id <= ? GROUP BY db",
         after.node, upto.node),
        ("SELECT linkname, count(fetched) FROM edges WHERE id > ? AND id <= ? GROUP BY linkname",
         after.edge, upto.edge),
    ):
        if hi > lo:
            counts.update(dict(journal.execute(sql, (lo, hi)).fetchall()))
    return _nonzero(counts)


def records_between(journal: Journal, after: int, upto: int) -> dict[str, int]:
    """Journal records per database with row ids in (after, upto]: a range of the primary key,
    so a sink that knows the counts up to `after` reads only the rows it has just loaded."""
    return _nonzero(dict(journal.execute(
        "SELECT db, count(*) FROM nodes WHERE id > ? AND id <= ? GROUP BY db", (after, upto)
    ).fetchall()))


def links_between(journal: Journal, after: int, upto: int) -> dict[str, int]:
    """Journal links per link name with row ids in (after, upto]."""
    return _nonzero(dict(journal.execute(
        "SELECT linkname, count(*) FROM edges WHERE id > ? AND id <= ? GROUP BY linkname",
        (after, upto),
    ).fetchall()))


def property_values(journal: Journal, cursor: Cursor, nodes_after: int = 0) -> dict[str, int]:
    """Non-NULL NODE_PROPERTIES values (as the stores coerce them) per database, of the props
    rows up to the cursor whose records are within it too (and past `nodes_after`, for the
    records a sink has just loaded). Strings and integers are counted in SQL; a year given as
    text ("2001 May") is coerced in Python exactly as the stores do."""
    scope = (
        "FROM props p JOIN nodes n ON n.db = p.db AND n.uid = p.uid "
        f"WHERE p.id <= ? AND n.id <= ? AND n.id > {int(nodes_after)}"
    )
    terms = []
    for k, kind in NODE_PROPERTIES.items():
        allowed = "('integer')" if kind == "INT64" else "('text', 'integer', 'real', 'array', " \
            "'object', 'true', 'false')"
        terms.append(f"(coalesce(json_type(p.data, '$.{k}'), 'null') IN {allowed})")
    props: Counter[str] = Counter(
        dict(
            journal.execute(
                f"SELECT p.db, sum({' + '.join(terms)}) {scope} GROUP BY p.db",
                (cursor.prop, cursor.node),
            ).fetchall()
        )
    )
    for k, kind in NODE_PROPERTIES.items():
        if kind != "INT64":
            continue
        for db, value in journal.execute(
            f"SELECT p.db, json_extract(p.data, '$.{k}') {scope} "
            f"AND json_type(p.data, '$.{k}') IN ('text', 'real')",
            (cursor.prop, cursor.node),
        ).fetchall():
            if coerce_property(value, kind) is not None:
                props[db] += 1
    return _nonzero(props)


def props_comparable(journal: Journal, cursor: Cursor) -> bool:
    """Whether property values can be compared at `cursor`: only when the store holds every
    props row. A record summarised again gets a new props row (a higher id) and loses its old
    one, so below a lagging cursor the journal no longer says what the store holds; and a
    record removed after the store's change cursor took its property values with it."""
    top = journal.execute("SELECT coalesce(max(id), 0) FROM props").fetchone()[0]
    if cursor.prop < int(top):
        return False
    if not journal.has_changes:
        return True
    return not journal.execute(
        "SELECT 1 FROM changes WHERE id > ? AND kind = 'node-' AND row_id <= ? LIMIT 1",
        (cursor.change, cursor.node),
    ).fetchone()


def rows_behind(journal: Journal, cursor: Cursor) -> dict[str, int]:
    """Journal rows past `cursor`, counted (replaced props rows leave gaps in the ids), and
    the removals and updates (`changes`) past its change cursor, which it must apply too."""
    changes = "(SELECT count(*) FROM changes WHERE id > ?)" if journal.has_changes else "?"
    row = journal.execute(
        "SELECT (SELECT count(*) FROM nodes WHERE id > ?), "
        "(SELECT count(*) FROM edges WHERE id > ?), "
        f"(SELECT count(*) FROM props WHERE id > ?), {changes}",
        (cursor.node, cursor.edge, cursor.prop, cursor.change if journal.has_changes else 0),
    ).fetchone()
    nodes, edges, props, changed = (int(v) for v in row)
    return {"nodes": nodes, "edges": edges, "props": props, "changes": changed,
            "total": nodes + edges + props + changed}


def compare(
    expected: Counts, actual: Counts, *, props: bool = True, fetched: bool = False
) -> list[Difference]:
    """Every label / link name whose counts differ, nodes first, then edges, then property
    values (unless `props=False`: see `props_comparable`), then `fetched` times (if asked)."""
    out: list[Difference] = []
    kinds = ("nodes", "edges") + (("props",) if props else ()) + (("fetched",) if fetched else ())
    for kind in kinds:
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
