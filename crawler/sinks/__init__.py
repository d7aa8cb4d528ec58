"""Sinks project journal rows into graph stores, idempotently, each from its own cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..journal import Journal

# Node properties every store carries besides `uid` and `depth` (filled by ESummary, issue 7).
# Fixed so that LadybugDB node tables have one schema and exports one set of attributes.
NODE_PROPERTIES: dict[str, str] = {
    "name": "STRING",
    "organism": "STRING",
    "description": "STRING",
    "accession": "STRING",
    "journal": "STRING",
    "year": "INT64",
    "status": "STRING",
}


@dataclass(slots=True)
class SyncReport:
    sink: str
    nodes: int = 0
    edges: int = 0
    props: int = 0
    changes: int = 0          # removals and updates applied (a refresh's `changes` rows)
    pending: int = 0          # journal rows this sink does not hold yet (0 when in step)
    repaired: int = 0         # rows reloaded because the store had lost or changed them
    error: str | None = None  # set when the store stayed unreachable; the journal keeps everything

    @property
    def ok(self) -> bool:
        return self.error is None and self.pending == 0


class Sink(Protocol):
    name: str

    def sync(self, journal: Journal) -> SyncReport:
        """Push every journal row past this sink's cursor; safe to call again at any time."""
        ...

    def close(self) -> None: ...
