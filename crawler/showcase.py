"""`entrez-graph demo`: the offline first run. No network, no server, well under a minute.

It starts the bundled E-utilities emulator in this process (a generated world that holds
BRCA1, `gene:672`, with its RefSeq proteins and their structures), crawls `gene:672` two levels
deep through the real engine into an embedded store, fetches names with ESummary when the
summaries module is present, and prints three bundled queries: the gene's RefSeq proteins, the
chain gene → proteins → structures, and the records per database. Everything a real crawl does
happens here too (batching, journal, LadybugDB projection); only NCBI is replaced.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .crawling.api import crawl
from .crawling.report import CrawlReport, describe
from .output import render
from .progress import Progress
from .querying import QueryResult, get_query, plain, run_query

WORLD_SEED = 1
WORLD_SIZE = 2000
SEED = "gene:672"
DEPTH = 2
# The emulator runs on 127.0.0.1 with no rate limit; a high client rate keeps the demo quick.
RPS = 200.0
# Rows printed per query (a first run should fit a screen); `entrez-graph query` shows them all.
MAX_ROWS = 12

# (bundled query name, parameters, heading printed above its rows, whether long answers are cut)
QUERIES: tuple[tuple[str, dict[str, Any], str, bool], ...] = (
    (
        "gene_refseq_proteins",
        {"gene": "672"},
        "gene 672 → RefSeq proteins (gene_protein_refseq)",
        True,
    ),
    (
        "gene_protein_structures",
        {"gene": "672"},
        "gene 672 → RefSeq proteins → 3D structures (gene_protein_refseq, protein_structure)",
        True,
    ),
    ("records_per_db", {}, "records per database", False),
)


@dataclass(slots=True)
class DemoResult:
    """What the demo crawled and what each query answered (also what the tests look at)."""

    store: Path
    kept: bool
    report: CrawlReport
    answers: list[tuple[str, str, QueryResult]] = field(default_factory=list)


def summaries_available() -> bool:
    """Names come from ESummary (issue 7); older builds without it still run the demo."""
    return importlib.util.find_spec("crawler.summaries") is not None


@contextmanager
def _private_rate_dir():
    """The emulator has no rate limit: keep the demo's limiter state out of the user's cache,
    so a demo never slows (or is slowed by) a real crawl sharing the machine-wide limiter."""
    old = os.environ.get("ENTREZ_GRAPH_RATE_DIR")
    path = tempfile.mkdtemp(prefix="entrez-graph-demo-rate-")
    os.environ["ENTREZ_GRAPH_RATE_DIR"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ENTREZ_GRAPH_RATE_DIR", None)
        else:
            os.environ["ENTREZ_GRAPH_RATE_DIR"] = old
        shutil.rmtree(path, ignore_errors=True)


def demo(
    store: str | Path | None = None,
    *,
    echo: Callable[[str], None] = print,
    progress: Progress | None = None,
    max_rows: int | None = MAX_ROWS,
) -> DemoResult:
    """Crawl gene:672 from an in-process emulator into `store` (a temp dir when None, removed
    afterwards) and print the three demo queries. Returns what was crawled and answered."""
    from .emulator import Emulator, World

    kept = store is not None
    root = Path(store) if store is not None else Path(tempfile.mkdtemp(prefix="entrez-graph-demo-"))
    if not kept:
        root = root / "store"
    try:
        echo(f"Starting the local E-utilities emulator (generated world {WORLD_SEED}, "
             f"about {WORLD_SIZE} records)…")
        world = World.generate(seed=WORLD_SEED, size=WORLD_SIZE)
        with _private_rate_dir(), Emulator(world, rate_limit=0) as emu:
            echo(f"Crawling {SEED} two levels deep from {emu.url} into {root} …")
            report = crawl(
                root, [SEED], depth=DEPTH, eutils_url=emu.url, email="demo@example.org",
                rps=RPS, summaries=summaries_available(), progress=progress,
                switch_endpoint=True,  # every demo's emulator serves the same world, on a new port
            )
        assert isinstance(report, CrawlReport)  # not a dry run
        echo(describe(report))
        result = DemoResult(store=root, kept=kept, report=report)
        for name, params, heading, cut in QUERIES:
            answer = run_query(root, name, params)
            result.answers.append((name, heading, answer))
            echo("")
            echo(f"== {heading}   [entrez-graph query {name}"
                 + "".join(f" --param {k}={v}" for k, v in params.items()) + "]")
            rows = [{k: plain(v, compact=True) for k, v in r.items()} for r in answer.records()]
            columns = answer.columns or get_query(name).columns
            shown = rows if max_rows is None or not cut else rows[:max_rows]
            echo(render(shown, columns))
            if len(rows) > len(shown):
                echo(f"… {len(rows) - len(shown)} more rows ({len(rows)} in all)")
        echo("")
        if kept:
            echo(f"The graph stays in {root}: try `entrez-graph query --store {root} --list`, "
                 f"`entrez-graph status --store {root}`.")
        else:
            echo("The demo store was temporary; run `entrez-graph demo --store DIR` to keep it "
                 "and query it with `entrez-graph query --store DIR …`.")
        return result
    finally:
        if not kept:
            shutil.rmtree(root.parent, ignore_errors=True)
