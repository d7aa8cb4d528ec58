"""Where a store directory keeps its parts, so every module agrees on the file names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

JOURNAL_FILE = "journal.sqlite"
GRAPH_FILE = "graph.lbdb"


@dataclass(frozen=True, slots=True)
class StorePaths:
    root: Path

    @classmethod
    def of(cls, store: str | Path) -> StorePaths:
        return cls(Path(store))

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_FILE

    @property
    def graph(self) -> Path:
        """The embedded LadybugDB database file."""
        return self.root / GRAPH_FILE
