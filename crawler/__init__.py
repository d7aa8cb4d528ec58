"""entrez-graph: crawl NCBI Entrez cross-references breadth-first into a graph database.

The public Python API: one function per command, of the same name (the CLI is a thin layer over
them), plus the classes they work with::

    from crawler import crawl, query, to_networkx, emulate

    with emulate(world_seed=1, size=2000) as emu:
        crawl("store", ["gene:672"], depth=2, eutils_url=emu.url)
    query("store", "records_per_db").records()
    graph = to_networkx("store")

Names are imported on first use, so `import crawler` (and `entrez-graph --help`) stays fast.
No public function shares its name with a submodule (`exporting`, `reporting`, `showcase` hold
`export`, `status` and `demo`), so `crawler.export` is always the function.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    "crawl": ("crawler.crawling.api", "crawl"),
    "link": ("crawler.linking", "link"),
    "links": ("crawler.linking", "links"),
    "query": ("crawler.querying", "query"),
    "status": ("crawler.reporting", "status"),
    "sync": ("crawler.syncing", "sync"),
    "export": ("crawler.exporting", "export"),
    "to_networkx": ("crawler.exporting", "to_networkx"),
    "to_pandas": ("crawler.exporting", "to_pandas"),
    "view": ("crawler.viewing", "view"),
    "summarize": ("crawler.syncing", "summarize"),
    "emulate": ("crawler.emulator.serve", "emulate"),
    "demo": ("crawler.showcase", "demo"),
    "EutilsClient": ("crawler.eutils.client", "EutilsClient"),
    "Journal": ("crawler.journal", "Journal"),
    "World": ("crawler.emulator.world", "World"),
    "Emulator": ("crawler.emulator.server", "Emulator"),
}

__all__ = [
    "Emulator",
    "EutilsClient",
    "Journal",
    "World",
    "crawl",
    "demo",
    "emulate",
    "export",
    "link",
    "links",
    "query",
    "status",
    "summarize",
    "sync",
    "to_networkx",
    "to_pandas",
    "view",
]

if TYPE_CHECKING:
    from .crawling.api import crawl
    from .emulator.serve import emulate
    from .emulator.server import Emulator
    from .emulator.world import World
    from .eutils.client import EutilsClient
    from .exporting import export, to_networkx, to_pandas
    from .journal import Journal
    from .linking import link, links
    from .querying import query
    from .reporting import status
    from .syncing import summarize, sync
    from .viewing import view


def _load(name: str) -> Any:
    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (module-level `__getattr__`, PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
