"""Relationships per second into Neo4j through the real sink, against the driver alone.

The yardstick is the driver alone on the same rows: constraints first, records by UNWIND … MERGE
per label, then for each link type a plain

    UNWIND $rows AS r MATCH (a:`from` {uid: r.f}) MATCH (b:`to` {uid: r.t})
    MERGE (a)-[e:`type`]->(b) SET e.score = coalesce(r.s, e.score) RETURN count(e) AS n

in transactions of 5,000 rows (and the same with CREATE). Then, on the same journal rows:

  merge   the sink's MERGE path (what every sync does unless the journal owns the database);
  fast    the sink's CREATE path (the database was empty when this journal first wrote to it);
  outage  `sync` after an outage: a first level is in Neo4j, the rest of a crawl (records,
          links, names) is only in the journal, and `crawler.syncing.sync` (what
          `entrez-graph sync` runs, real-count verification included) catches up;

and prints each rate as a ratio of the yardstick's, checks Neo4j holds exactly the journal's
counts, and that a second sync writes nothing.

    docker compose up -d --wait
    ENTREZ_GRAPH_TEST_NEO4J=1 NEO4J_URI=bolt://localhost:7687 python benchmarks/neo4j_write.py \\
        [--edges 100000] [--outage-edges 200000] [--batch-size 5000] [--window 40000] \\
        [--paths merge,fast,outage] [--parallel 1,2,4]

THE DATABASE AT NEO4J_URI (NEO4J_DATABASE, or the server's default) IS EMPTIED: it runs only
with ENTREZ_GRAPH_TEST_NEO4J=1 beside NEO4J_URI, and refuses a database holding labels that
entrez-graph does not write. Without them it says so and exits 0. `--client-only` needs no
server: it times the sink's own work against a driver that answers at once, and the driver's
parameter packing with and without neo4j-rust-ext.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# (dbfrom, linkname, dbto, scored, share of the edges)
LINKS = [
    ("gene", "gene_protein", "protein", False, 1),
    ("gene", "gene_protein_refseq", "protein", False, 1),
    ("gene", "gene_pubmed", "pubmed", False, 1),
    ("protein", "protein_nuccore", "nuccore", False, 1),
    ("protein", "protein_structure", "structure", False, 1),
    ("protein", "protein_protein", "protein", True, 1),
    ("nuccore", "nuccore_pubmed", "pubmed", False, 1),
    ("pubmed", "pubmed_pubmed", "pubmed", True, 1),
]
# a crawl's mix after an outage (issue 12: 138k of 194k relationships were pubmed_pubmed)
OUTAGE_SHARE = {"pubmed_pubmed": 0.7}
SHARE = {"gene": 0.1, "protein": 0.35, "nuccore": 0.2, "pubmed": 0.3, "structure": 0.05}
_OURS = re.compile(r"^[a-z][a-z0-9_]*$|^EntrezGraphCursor$")
YARDSTICK_ROWS = 5_000


def uids_for(n_nodes: int) -> dict[str, list[str]]:
    return {db: [str(1_000_000 + i) for i in range(max(1, int(n_nodes * share)))]
            for db, share in SHARE.items()}


def make_edges(uids: dict[str, list[str]], n_edges: int, rng: random.Random,
               weights: dict[str, float] | None = None) -> list[tuple]:
    """Distinct edges of the link names in LINKS, in a shuffled (crawl-like) order."""
    weights = weights or {}
    rest = 1.0 - sum(weights.values())
    others = [ln for ln in LINKS if ln[1] not in weights]
    share = {ln[1]: weights.get(ln[1], rest / len(others)) for ln in LINKS}
    edges: dict[tuple, int | None] = {}  # one score per edge, as the journal keeps them
    for dbfrom, link, dbto, scored, _ in LINKS:
        want = int(n_edges * share[link])
        have = 0
        while have < want:
            a, b = rng.choice(uids[dbfrom]), rng.choice(uids[dbto])
            key = (dbfrom, a, link, dbto, b)
            if (dbfrom, a) != (dbto, b) and key not in edges:
                edges[key] = rng.randrange(1, 10**6) if scored else None
                have += 1
    out = sorted((*key, score) for key, score in edges.items())
    rng.shuffle(out)
    return out


def build(root: Path, n_edges: int, seed: int) -> tuple[object, list[tuple]]:
    """A journal holding the records; returns it and the edges to add later."""
    from crawler.journal import Journal

    rng = random.Random(seed)
    uids = uids_for(max(1000, n_edges // 2))
    journal = Journal(root / "journal.sqlite")
    for db, ids in uids.items():
        journal.add_nodes((db, u, rng.randrange(3)) for u in ids)
    return journal, make_edges(uids, n_edges, rng)


# -- the database ---------------------------------------------------------------------------------


def wipe(driver, database: str | None) -> None:
    """Empty the database (ours only); the constraints stay, as a user's database keeps them."""
    labels = [r["label"] for r in driver.execute_query(
        "CALL db.labels() YIELD label", database_=database).records]
    foreign = [lb for lb in labels if not _OURS.match(lb)]
    if foreign:
        sys.exit(f"refusing to empty a database holding other data (labels {foreign[:5]})")
    with driver.session(database=database) as session:
        # CALL (n) { … }: the variable scope clause (Neo4j 5.23+); `CALL { WITH n … }` is
        # deprecated and answered with a notification
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def count(driver, database: str | None) -> tuple[int, int]:
    nodes = driver.execute_query(
        "MATCH (n) WHERE NOT n:EntrezGraphCursor RETURN count(n) AS n", database_=database
    ).records[0]["n"]
    rels = driver.execute_query(
        "MATCH ()-[r]->() RETURN count(r) AS n", database_=database
    ).records[0]["n"]
    return nodes, rels


def _run(tx, text: str, rows: list[dict]) -> None:
    tx.run(text, {"rows": rows}).consume()


def _schema(tx, text: str) -> None:
    tx.run(text).consume()


def yardstick(driver, database: str | None, journal, edges: list[tuple], verb: str) -> float:
    """The driver alone: constraints, records, then each link type in 5,000-row transactions.

    The statement text is the sink's own (`edge_query`), so the two differ only in how the rows
    are grouped into statements and transactions."""
    from crawler.sinks.neo4j import constraint_query, edge_query, node_query

    wipe(driver, database)
    nodes: dict[str, list[dict]] = defaultdict(list)
    for n in journal.iter_nodes():
        nodes[n.db].append({"uid": n.uid, "depth": n.depth})
    with driver.session(database=database) as session:
        for label in sorted(nodes):
            session.execute_write(_schema, constraint_query(label))
        for label, rows in sorted(nodes.items()):
            text = node_query(label)
            for i in range(0, len(rows), YARDSTICK_ROWS):
                session.execute_write(_run, text, rows[i:i + YARDSTICK_ROWS])
        by_type: dict[tuple, list[dict]] = defaultdict(list)
        for dbfrom, f, link, dbto, t, s in edges:
            by_type[(dbfrom, link, dbto)].append({"f": f, "t": t, "s": s})
        t0 = time.perf_counter()
        for (dbfrom, link, dbto), rows in sorted(by_type.items()):
            text = edge_query(dbfrom, link, dbto, create=verb == "CREATE")
            for i in range(0, len(rows), YARDSTICK_ROWS):
                session.execute_write(_run, text, rows[i:i + YARDSTICK_ROWS])
        took = time.perf_counter() - t0
    held = count(driver, database)[1]
    if held != len(edges):
        sys.exit(f"yardstick {verb}: {held} relationships held, {len(edges)} written")
    return len(edges) / took


# -- the sink -------------------------------------------------------------------------------------


def run_path(name: str, args: argparse.Namespace, driver, config, parallel: int) -> dict:
    from crawler.sinks.neo4j import DRIVER_LOG, Neo4jSink

    fast = name == "fast"
    with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
        journal, edges = build(Path(tmp), args.edges, args.seed)
        wipe(driver, config.database)
        sink = Neo4jSink.from_config(config, batch_size=args.batch_size, window=args.window,
                                     fast=fast, parallel=parallel)
        retries = DRIVER_LOG.retries
        deadlocks = DRIVER_LOG.deadlocks
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
            exact = held == expected and not sink.verify(journal)
            used = "CREATE" if sink.fast_batches and not sink.merge_batches else (
                "MERGE" if not sink.fast_batches else "mixed")
        finally:
            sink.close()
            journal.close()
    return {
        "path": f"{name}" + (f" x{parallel}" if parallel > 1 else ""),
        "used": used,
        "rows": report.edges,
        "seconds": t_edges,
        "nodes_s": t_nodes,
        "rel_per_s": report.edges / t_edges if t_edges else float("inf"),
        "exact": exact,
        "idempotent": still == held and again.edges == 0,
        "retries": DRIVER_LOG.retries - retries,
        "deadlocks": DRIVER_LOG.deadlocks - deadlocks,
    }


def run_outage(args: argparse.Namespace, driver, config) -> dict:
    """A first level reaches Neo4j; the rest of the crawl only the journal; then `sync`."""
    from crawler.journal import Journal
    from crawler.sinks.neo4j import Neo4jSink
    from crawler.store import StorePaths
    from crawler.syncing import sync

    rng = random.Random(args.seed + 1)
    uids = uids_for(max(1000, args.outage_edges // 6))
    edges = make_edges(uids, args.outage_edges, rng, OUTAGE_SHARE)
    with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
        store = Path(tmp) / "store"
        wipe(driver, config.database)
        with Journal(StorePaths.of(store).journal) as journal:
            first = {db: ids[: max(1, len(ids) // 10)] for db, ids in uids.items()}
            for db, ids in first.items():
                journal.add_nodes((db, u, 1) for u in ids)
            sink = Neo4jSink.from_config(config)
            try:
                assert sink.sync(journal).ok  # the first level, before the outage
            finally:
                sink.close()
            for db, ids in uids.items():  # the outage: the rest reaches the journal only
                journal.add_nodes((db, u, 2) for u in ids[len(first[db]):])
            journal.add_edges(edges)
            for db, ids in uids.items():
                for u in ids[: len(ids) // 2]:
                    journal.set_props(db, u, {"name": f"{db} {u}", "organism": "Homo sapiens"})
            behind = sum(journal.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                         for t in ("nodes", "edges", "props")) - sum(map(len, first.values()))
        t0 = time.perf_counter()
        [report] = sync(store, neo4j=config, batch_size=args.batch_size)
        took = time.perf_counter() - t0
        held = count(driver, config.database)
    rows = report.nodes + report.edges + report.props
    return {
        "path": "outage", "used": "sync", "rows": rows, "behind": behind, "seconds": took,
        "rel": report.edges, "rel_per_s": report.edges / took, "rows_per_s": rows / took,
        "exact": report.ok and held[1] == len(edges),
        "error": report.error or (f"{report.pending} rows pending" if report.pending else None)
        or (None if held[1] == len(edges) else f"{held[1]} relationships held"),
    }


# -- without a server -----------------------------------------------------------------------------


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
        self._record = {"n": len(params.get("rows", ())), "name": "neo4j",
                        "c": {"journal": "j", **self.cursor}}
        if text.startswith("MATCH (o:"):
            self._record["n"] = 0
        return self

    def single(self) -> dict:
        record = dict(self._record)
        record[0] = record.get("name")
        return record

    def consume(self) -> None: ...


def packing(rows: list[dict]) -> str:
    """Seconds to pack the UNWIND parameters as Bolt does, pure Python vs neo4j-rust-ext."""
    try:
        from neo4j._codec.packstream import v1  # private: only to time the packing
    except ImportError:
        return "packing: cannot be timed with this driver version"

    class Sink:
        def write(self, data: bytes) -> None: ...

    hooks = v1.Packer._inject_hooks()
    chunks = [{"rows": rows[i:i + 5000]} for i in range(0, len(rows), 5000)]
    t0 = time.perf_counter()
    packer = v1.Packer(Sink())
    for chunk in chunks:
        packer._py_pack(chunk, hooks)
    python = time.perf_counter() - t0
    if v1._rust_pack is None:
        return (f"packing {len(rows):,} rows: pure Python {python:.2f} s "
                "(neo4j-rust-ext not installed)")
    t0 = time.perf_counter()
    for chunk in chunks:
        v1._rust_pack(chunk, hooks)
    rust = time.perf_counter() - t0
    return (f"packing {len(rows):,} rows: pure Python {python:.2f} s, neo4j-rust-ext "
            f"{rust:.2f} s ({python / rust:.0f}x faster)")


def client_only(args: argparse.Namespace) -> int:
    import crawler.sinks.neo4j as neo

    instant = _Instant()
    neo._driver_factory = lambda config, **settings: instant
    config = neo.Neo4jConfig.from_options("bolt://localhost:7687", env={})
    with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
        journal, edges = build(Path(tmp), args.edges, args.seed)
        sink = neo.Neo4jSink.from_config(config, batch_size=args.batch_size, window=args.window)
        sink.sync(journal)
        journal.add_edges(edges)
        t0 = time.perf_counter()
        report = sink.sync(journal)
        took = time.perf_counter() - t0
        journal.close()
    print(f"client side only (no server): {report.edges:,} edges in {took:.2f} s = "
          f"{report.edges / took:,.0f} rel/s ceiling from the sink itself")
    print(packing([{"f": e[1], "t": e[4], "s": e[5]} for e in edges]))
    return 0


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--outage-edges", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5_000, help="rows per statement")
    parser.add_argument("--window", type=int, default=None,
                        help="journal rows per transaction (default 8 x batch size)")
    parser.add_argument("--paths", default="merge,fast,outage",
                        help="comma list: merge, fast, outage")
    parser.add_argument("--parallel", default="1",
                        help="comma list of sessions for the MERGE path, e.g. 1,2,4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-only", action="store_true",
                        help="no server: time the sink's own work (grouping, parameters, "
                             "cursor bookkeeping) and the driver's packing")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.client_only:
        return client_only(args)
    if not os.environ.get("NEO4J_URI") or os.environ.get("ENTREZ_GRAPH_TEST_NEO4J") != "1":
        print("This benchmark needs a Neo4j server it may EMPTY: set NEO4J_URI and "
              "ENTREZ_GRAPH_TEST_NEO4J=1 (docker compose up -d --wait; "
              "NEO4J_URI=bolt://localhost:7687). Nothing measured. "
              "(--client-only times the sink's own share without a server.)")
        return 0
    from neo4j import GraphDatabase

    from crawler.sinks.neo4j import Neo4jConfig, quiet_driver_logging

    quiet_driver_logging()
    config = Neo4jConfig.from_options()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for name in paths:
        if name not in ("merge", "fast", "outage"):
            parser.error(f"unknown path {name!r}")
    parallels = [int(p) for p in args.parallel.split(",") if p.strip()]
    driver = GraphDatabase.driver(config.uri, auth=(config.user, config.password))
    print(f"Neo4j {config.uri} database {config.database or '(default)'} (EMPTIED); "
          f"{args.edges:,} edges of {len(LINKS)} link names; statements of "
          f"{args.batch_size:,} rows")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="neo4j-bench-") as tmp:
            journal, edges = build(Path(tmp), args.edges, args.seed)
            merge_rate = yardstick(driver, config.database, journal, edges, "MERGE")
            create_rate = yardstick(driver, config.database, journal, edges, "CREATE")
            journal.close()
        print(f"yardstick, the driver alone per link type in {YARDSTICK_ROWS:,}-row "
              f"transactions: MERGE {merge_rate:,.0f} rel/s, CREATE {create_rate:,.0f} rel/s")
        for name in paths:
            if name == "outage":
                results.append(run_outage(args, driver, config))
            elif name == "merge":
                results += [run_path(name, args, driver, config, p) for p in parallels]
            else:
                results.append(run_path(name, args, driver, config, 1))
    finally:
        driver.close()
    print(f"{'path':9} {'used':6} {'rows':>9} {'s':>7} {'rel/s':>9} {'x MERGE':>8} "
          f"{'x CREATE':>8}  exact  notes")
    for r in results:
        notes = []
        if "retries" in r:
            notes.append(f"idempotent {r['idempotent']}, driver retries {r['retries']} "
                         f"(deadlocks {r['deadlocks']})")
        if r["path"] == "outage":
            notes.append(f"{r['rel']:,} relationships, {r['rows_per_s']:,.0f} rows/s, "
                         f"{r['behind']:,} rows were behind")
            if r["error"]:
                notes.append(f"NOT EXACT: {r['error']}")
        print(f"{r['path']:9} {r['used']:6} {r['rows']:9,} {r['seconds']:7.2f} "
              f"{r['rel_per_s']:9,.0f} {r['rel_per_s'] / merge_rate:8.2f} "
              f"{r['rel_per_s'] / create_rate:8.2f}  {r['exact']!s:5}  {'; '.join(notes)}")
    for r in results:
        if r["path"] == "merge":
            verdict = "meets" if r["rel_per_s"] >= merge_rate else "BELOW"
            print(f"goal: the MERGE path at >= 1.0 x the driver alone: "
                  f"{r['rel_per_s'] / merge_rate:.2f} x, {verdict}")
        if r["path"] == "outage":
            verdict = "meets" if r["rel_per_s"] >= 10_000 else "BELOW"
            print(f"goal: sync after an outage at >= 10,000 rel/s: {r['rel_per_s']:,.0f}, "
                  f"{verdict}")
    return 0 if all(r["exact"] and r.get("idempotent", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
