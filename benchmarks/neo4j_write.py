"""Relationships per second into Neo4j through the real sink: MERGE path and fast (CREATE) path.

Builds a synthetic journal (records in five databases, 100,000 edges of several link names by
default, scores on same-database links), then for each path:

  1. empties the database (refused when it holds records entrez-graph did not write),
  2. syncs the records alone (constraints, node MERGE) and times it,
  3. adds the edges to the journal and times the edge sync alone: relationships/s,
  4. checks Neo4j holds exactly the journal's counts, and that a second sync writes nothing.

The MERGE path is what every sync does unless the journal provably owns the database; the fast
path is taken when the database was empty when this journal first wrote to it (see the module
docstring of crawler/sinks/neo4j.py).

    docker compose up -d --wait
    NEO4J_URI=bolt://localhost:7687 python benchmarks/neo4j_write.py [--edges 100000]
        [--batch-size 5000] [--paths merge,fast]

Without NEO4J_URI it says so and exits 0. THE DATABASE AT NEO4J_URI IS EMPTIED.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

# (dbfrom, linkname, dbto, scored)
LINKS = [
    ("gene", "gene_protein", "protein", False),
    ("gene", "gene_protein_refseq", "protein", False),
    ("gene", "gene_pubmed", "pubmed", False),
    ("protein", "protein_nuccore", "nuccore", False),
    ("protein", "protein_structure", "structure", False),
    ("protein", "protein_protein", "protein", True),
    ("nuccore", "nuccore_pubmed", "pubmed", False),
    ("pubmed", "pubmed_pubmed", "pubmed", True),
]
SHARE = {"gene": 0.1, "protein": 0.35, "nuccore": 0.2, "pubmed": 0.3, "structure": 0.05}
_OURS = re.compile(r"^[a-z][a-z0-9_]*$|^EntrezGraphCursor$")


def build(root: Path, n_edges: int, seed: int) -> tuple[object, list[tuple]]:
    """A journal holding the records; returns it and the edges to add later."""
    from crawler.journal import Journal

    rng = random.Random(seed)
    n_nodes = max(1000, n_edges // 2)
    uids = {db: [str(1_000_000 + i) for i in range(int(n_nodes * share))]
            for db, share in SHARE.items()}
    journal = Journal(root / "journal.sqlite")
    for db, ids in uids.items():
        journal.add_nodes((db, u, rng.randrange(3)) for u in ids)
    edges: set[tuple] = set()
    while len(edges) < n_edges:
        dbfrom, link, dbto, scored = LINKS[len(edges) % len(LINKS)]
        a, b = rng.choice(uids[dbfrom]), rng.choice(uids[dbto])
        if (dbfrom, a) == (dbto, b):
            continue
        edges.add((dbfrom, a, link, dbto, b, rng.randrange(1, 10**6) if scored else None))
    return journal, sorted(edges, key=lambda e: rng.random())


def wipe(driver, database: str | None) -> None:
    labels = [r["label"] for r in driver.execute_query(
        "CALL db.labels() YIELD label", database_=database).records]
    foreign = [lb for lb in labels if not _OURS.match(lb)]
    if foreign:
        sys.exit(f"refusing to empty a database holding other data (labels {foreign[:5]})")
    with driver.session(database=database) as session:
        session.run(
            "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def count(driver, database: str | None) -> tuple[int, int]:
    nodes = driver.execute_query(
        "MATCH (n) WHERE NOT n:EntrezGraphCursor RETURN count(n) AS n", database_=database
    ).records[0]["n"]
    rels = driver.execute_query(
        "MATCH ()-[r]->() RETURN count(r) AS n", database_=database
    ).records[0]["n"]
    return nodes, rels


def run_path(name: str, fast: bool, args: argparse.Namespace, driver, config) -> dict:
    from crawler.sinks.neo4j import Neo4jSink

    with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
        journal, edges = build(Path(tmp), args.edges, args.seed)
        wipe(driver, config.database)
        sink = Neo4jSink.from_config(config, batch_size=args.batch_size, fast=fast)
        try:
            t0 = time.perf_counter()
            nodes_report = sink.sync(journal)
            t_nodes = time.perf_counter() - t0
            if not nodes_report.ok:
                sys.exit(f"{name}: node sync failed: {nodes_report.error}")
            journal.add_edges(edges)
            t0 = time.perf_counter()
            report = sink.sync(journal)
            t_edges = time.perf_counter() - t0
            if not report.ok:
                sys.exit(f"{name}: edge sync failed: {report.error}")
            held = count(driver, config.database)
            expected = (nodes_report.nodes, len(edges))
            again = sink.sync(journal)
            still = count(driver, config.database)
            path_used = "CREATE" if sink.fast_batches and not sink.merge_batches else (
                "MERGE" if not sink.fast_batches else "mixed")
        finally:
            sink.close()
            journal.close()
    return {
        "path": name,
        "used": path_used,
        "nodes": nodes_report.nodes,
        "nodes_s": t_nodes,
        "edges": report.edges,
        "edges_s": t_edges,
        "rel_per_s": report.edges / t_edges if t_edges else float("inf"),
        "exact": held == expected,
        "idempotent": still == held and again.edges == 0,
    }


class _Instant:
    """A driver stand-in that answers every statement at once with what the sink expects."""

    def __init__(self) -> None:
        self.cursor = {"node": 0, "edge": 0, "prop": 0, "shared": False}

    # driver
    def verify_connectivity(self) -> None: ...
    def close(self) -> None: ...
    def session(self, **_: object) -> _Instant:
        return self

    # session
    def __enter__(self) -> _Instant:
        return self

    def __exit__(self, *exc: object) -> None: ...
    def execute_write(self, fn, *args):
        return fn(self, *args)

    execute_read = execute_write

    # transaction and result
    def run(self, text: str, params: dict | None = None) -> _Instant:
        params = params or {}
        if "SET c.node = $node" in text:
            self.cursor.update(node=params["node"], edge=params["edge"], prop=params["prop"])
        self._record = {"n": len(params.get("rows", ())), "name": "neo4j", **self.cursor}
        if text.startswith("MATCH (o:"):
            self._record["n"] = 0
        return self

    def single(self) -> dict:
        record = dict(self._record)
        record[0] = record.get("name")
        return record

    def consume(self) -> None: ...


def client_only(args: argparse.Namespace) -> int:
    import crawler.sinks.neo4j as neo

    instant = _Instant()
    neo._driver_factory = lambda config, **settings: instant
    config = neo.Neo4jConfig.from_options("bolt://localhost:7687", env={})
    with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
        journal, edges = build(Path(tmp), args.edges, args.seed)
        sink = neo.Neo4jSink.from_config(config, batch_size=args.batch_size)
        sink.sync(journal)
        journal.add_edges(edges)
        t0 = time.perf_counter()
        report = sink.sync(journal)
        took = time.perf_counter() - t0
        journal.close()
    print(f"client side only (no server): {report.edges:,} edges in {took:.2f} s = "
          f"{report.edges / took:,.0f} rel/s ceiling from the sink itself")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--paths", default="merge,fast", help="comma list: merge, fast")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-only", action="store_true",
                        help="no server: time the sink's own work (grouping, parameters, "
                             "cursor bookkeeping) against a driver that answers instantly")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.client_only:
        return client_only(args)
    if not os.environ.get("NEO4J_URI"):
        print("NEO4J_URI is not set: this benchmark needs a Neo4j server "
              "(docker compose up -d --wait; NEO4J_URI=bolt://localhost:7687). Nothing measured. "
              "(--client-only times the sink's own share without a server.)")
        return 0
    from neo4j import GraphDatabase

    from crawler.sinks.neo4j import Neo4jConfig

    config = Neo4jConfig.from_options()
    driver = GraphDatabase.driver(config.uri, auth=(config.user, config.password))
    print(f"Neo4j {config.uri} database {config.database or '(default)'}; {args.edges:,} edges "
          f"of {len(LINKS)} link names; batch {args.batch_size:,}")
    results = []
    try:
        for name in [p.strip() for p in args.paths.split(",") if p.strip()]:
            if name not in ("merge", "fast"):
                parser.error(f"unknown path {name!r}")
            results.append(run_path(name, name == "fast", args, driver, config))
    finally:
        driver.close()
    print(f"{'path':6} {'used':7} {'records':>8} {'rec s':>7} {'edges':>8} {'edge s':>7} "
          f"{'rel/s':>9}  exact  idempotent")
    for r in results:
        print(f"{r['path']:6} {r['used']:7} {r['nodes']:8,} {r['nodes_s']:7.2f} {r['edges']:8,} "
              f"{r['edges_s']:7.2f} {r['rel_per_s']:9,.0f}  {r['exact']!s:5}  {r['idempotent']}")
    goal = 20_000
    for r in results:
        verdict = "meets" if r["rel_per_s"] >= goal else "BELOW"
        print(f"{r['path']}: {r['rel_per_s']:,.0f} rel/s {verdict} the goal of {goal:,} rel/s")
    return 0 if all(r["exact"] and r["idempotent"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
