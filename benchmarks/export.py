"""Export a synthetic journal of 1,000,000 edges to every format; print time and peak memory.

The journal is built directly with the Journal API (records in five databases, edges of a dozen
link names including parallel gene_protein / gene_protein_refseq pairs, scores on same-database
links, ESummary-like properties on a tenth of the records). Each export then runs in a fresh
process (`entrez-graph`'s own `export()`), so every figure is that format's alone: wall time and
the process's peak resident memory (VmHWM), next to its resident memory before exporting
(Python + imports). For comparison, `to_networkx` and `to_pandas` (the in-memory APIs) are
measured the same way, and so is a JSON export of two link names' subgraph (`--link`, which
selects records through a SQLite temp table). tsv, csv and parquet count both of their files.

    python benchmarks/export.py                      # 1,000,000 edges in a temp directory
    python benchmarks/export.py --edges 100000 --keep /tmp/exbench --no-networkx

Streaming means peak memory does not grow with the edge count: run it at two sizes to see that.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("graphml", "gexf", "json", "neo4j-csv", "tsv", "csv", "parquet")

# (dbfrom, linkname, dbto, scored)
LINKS = [
    ("gene", "gene_protein", "protein", False),
    ("gene", "gene_protein_refseq", "protein", False),
    ("gene", "gene_nuccore", "nuccore", False),
    ("gene", "gene_pubmed", "pubmed", False),
    ("protein", "protein_gene", "gene", False),
    ("protein", "protein_structure", "structure", False),
    ("protein", "protein_protein", "protein", True),
    ("protein", "protein_pubmed", "pubmed", False),
    ("nuccore", "nuccore_protein", "protein", False),
    ("pubmed", "pubmed_pubmed", "pubmed", True),
    ("pubmed", "pubmed_gene", "gene", False),
    ("structure", "structure_protein", "protein", False),
]
SHARE = {"gene": 0.1, "protein": 0.35, "nuccore": 0.15, "pubmed": 0.35, "structure": 0.05}


def build(store: Path, edges: int, seed: int = 1) -> tuple[int, int]:
    """A journal with about edges/5 records and exactly `edges` distinct edges."""
    from crawler.journal import Journal
    from crawler.store import StorePaths

    rng = random.Random(seed)
    n_records = max(edges // 5, 100)
    counts = {db: max(int(n_records * share), 10) for db, share in SHARE.items()}
    with Journal(StorePaths.of(store).journal) as journal:
        for db, n in counts.items():
            journal.add_nodes((db, str(i), rng.randint(0, 3)) for i in range(1, n + 1))
        with journal.transaction():
            for db, n in counts.items():
                for i in range(1, n + 1, 10):
                    journal.set_props(db, str(i), {
                        "name": f"{db.upper()}{i}", "organism": "Homo sapiens",
                        "description": f"synthetic record {i} <{db}> & co",
                        "year": 1990 + i % 35,
                    })
        added = 0
        while added < edges:
            batch = []
            for _ in range(min(200_000, edges - added)):
                dbfrom, link, dbto, scored = rng.choice(LINKS)
                src = rng.randint(1, counts[dbfrom])
                dst = rng.randint(1, counts[dbto])
                if dbfrom == dbto and src == dst:
                    continue
                score = rng.randint(1, 100_000_000) if scored else None
                batch.append((dbfrom, str(src), link, dbto, str(dst), score))
                if link == "gene_protein" and rng.random() < 0.5:  # parallel refseq link
                    batch.append((dbfrom, str(src), "gene_protein_refseq", dbto, str(dst), None))
            added += journal.add_edges(batch[: edges - added])
        stats = journal.stats()
    return stats["nodes"], stats["edges"]


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, reset by exec (ru_maxrss is not: on Linux a
    child started by fork+exec inherits the parent's peak, here the journal builder's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(kind: str, store: str, out: str) -> None:
    """Child process: export (or build the networkx graph) and print figures as JSON."""
    from crawler.exporting import export, to_networkx, to_pandas

    base = peak_rss_mb()
    start = time.perf_counter()
    if kind == "networkx":
        graph = to_networkx(store)
        nodes, edges, size = graph.number_of_nodes(), graph.number_of_edges(), 0
    elif kind == "pandas":
        nodes_df, edges_df = to_pandas(store)
        nodes, edges, size = len(nodes_df), len(edges_df), 0
    else:
        fmt, _, filtered = kind.partition("+")
        links = ["gene_protein", "protein_structure"] if filtered == "links" else None
        report = export(store, out, fmt, links=links)
        nodes, edges = report.nodes, report.edges
        target = Path(out)
        size = (sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
                if target.is_dir() else sum(p.stat().st_size for p in report.files))
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"kind": kind, "seconds": seconds, "base_mb": base,
                      "peak_mb": peak, "nodes": nodes, "edges": edges, "bytes": size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None,
                        help="work directory to keep (reused if it already holds the journal)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--no-networkx", action="store_true",
                        help="skip the in-memory to_networkx and to_pandas comparisons")
    parser.add_argument("--run", nargs=3, metavar=("KIND", "STORE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(*args.run)
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / f"store-{args.edges}"
    try:
        if not (store / "journal.sqlite").exists():
            start = time.perf_counter()
            nodes, edges = build(store, args.edges)
            print(f"built journal: {nodes:,} records, {edges:,} edges "
                  f"in {time.perf_counter() - start:.1f} s")
        # json+links: the edge-induced subgraph of two link names (temp-table path).
        kinds = [*args.formats, "json+links"] + (
            [] if args.no_networkx else ["networkx", "pandas"])
        print(f"{'format':<10} {'records':>9} {'edges':>10} {'seconds':>8} {'base MB':>8} "
              f"{'peak MB':>8} {'size MB':>8}")
        for kind in kinds:
            out = work / f"out.{kind}"
            proc = subprocess.run(
                [sys.executable, __file__, "--run", kind, str(store), str(out)],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                print(f"{kind}: failed\n{proc.stderr}", file=sys.stderr)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{kind:<10} {r['nodes']:>9,} {r['edges']:>10,} {r['seconds']:>8.1f} "
                  f"{r['base_mb']:>8.0f} {r['peak_mb']:>8.0f} {r['bytes'] / 1e6:>8.0f}")
            if out.is_dir():
                shutil.rmtree(out)
            for leftover in work.glob("out.*"):  # tables: also the node file beside OUT
                if leftover.is_file():
                    leftover.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
