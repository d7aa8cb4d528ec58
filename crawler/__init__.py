"""entrez-graph: crawl NCBI Entrez cross-references breadth-first into a graph database.

The public Python API: one function per command, of the same name (the CLI is a thin layer over
them), plus the classes they work with::

    from crawler import crawl, query, to_networkx, emulate

    with emulate(world_seed=1, size=2000) as emu:
        crawl("store", ["gene:672"], depth=2, eutils_url=emu.url)
    query("store", "records_per_db").records()
    graph = to_networkx("store")

Names are imported on first use, so `import crawler` (and `entrez-graph --help`) stays fast.
`export`, `status` and `demo` are always the functions, even though modules of the same names
exist: reach those modules with `importlib.import_module("crawler.export")` or `from
crawler.export import ...`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    "crawl": ("crawler.engine", "crawl"),
    "link": ("crawler.linking", "link"),
    "links": ("crawler.linking", "links"),
    "query": ("crawler.querying", "query"),
    "status": ("crawler.status", "status"),
    "sync": ("crawler.syncing", "sync"),
    "export": ("crawler.export", "export"),
    "to_networkx": ("crawler.export", "to_networkx"),
    "summarize": ("crawler.syncing", "summarize"),
    "emulate": ("crawler.emulator.serve", "emulate"),
    "demo": ("crawler.demo", "demo"),
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
]

if TYPE_CHECKING:
    from .demo import demo
    from .emulator.serve import emulate
    from .emulator.server import Emulator
    from .emulator.world import World
    from .engine import crawl
    from .eutils.client import EutilsClient
    from .export import export, to_networkx
    from .journal import Journal
    from .linking import link, links
    from .querying import query
    from .status import status
    from .syncing import summarize, sync


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


class _Shadowed:
    """A public function whose name is also a submodule's (`crawler.export`, …).

    Importing a submodule sets the package attribute of its name to the module; as a data
    descriptor on the package's class this keeps the attribute the function, whichever of the
    two was imported first. The module stays in `sys.modules`.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, package: object, owner: type | None = None) -> Any:
        if package is None:
            return self
        value = package.__dict__.get(f"_api_{self.name}")
        if value is None:
            value = _load(self.name)
            package.__dict__[f"_api_{self.name}"] = value
        return value

    def __set__(self, package: object, value: Any) -> None:
        if isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: keep the function
        package.__dict__[f"_api_{self.name}"] = value  # e.g. monkeypatching the function


class _Package(types.ModuleType):
    export = _Shadowed("export")
    status = _Shadowed("status")
    demo = _Shadowed("demo")


sys.modules[__name__].__class__ = _Package
