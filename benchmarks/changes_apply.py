"""Removals and updates through the embedded store: print links removed per second, and more.

A synthetic journal (records of two databases, links of two link names, scores on one) is loaded
into a new `graph.lbdb`; then the journal API writes what a refresh writes (a fraction of the
links removed, a fraction of the scores updated, a few records removed with their links), and
one `sync` applies it. Printed: the changes written to the journal per second, the sync pass
(changes applied, then the store's proof) in seconds and links removed per second, and whether
the store then equals the journal (its real counts, the proof).

    python benchmarks/changes_apply.py                       # 100,000 records, 300,000 links
    python benchmarks/changes_apply.py --records 200000 --links 1000000 --remove 0.05
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from crawler.journal import Journal
from crawler.sinks.ladybug import LadybugSink


def build(journal: Journal, records: int, links: int, rng: random.Random) -> None:
    half = records // 2
    journal.add_nodes([("gene", str(i), 0) for i in range(half)])
    journal.add_nodes([("protein", str(i), 1) for i in range(records - half)])
    rows = set()
    while len(rows) < links:
        if rng.random() < 0.5:
            rows.add(("gene", str(rng.randrange(half)), "gene_protein", "protein",
                      str(rng.randrange(records - half)), None))
        else:
            a, b = rng.randrange(records - half), rng.randrange(records - half)
            if a != b:
                rows.add(("protein", str(a), "protein_protein", "protein", str(b),
                          rng.randrange(1000)))
    journal.add_edges(sorted(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--links", type=int, default=300_000)
    parser.add_argument("--remove", type=float, default=0.05, help="fraction of links removed")
    parser.add_argument("--rescore", type=float, default=0.01, help="fraction of scores updated")
    parser.add_argument("--drop-records", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="changes-bench-") as tmp:
        store = Path(tmp)
        journal = Journal(store / "journal.sqlite")
        build(journal, args.records, args.links, rng)
        with LadybugSink(store / "graph.lbdb") as sink:
            started = time.perf_counter()
            sink.sync(journal)
            print(f"initial load: {args.records:,} records, {args.links:,} links in "
                  f"{time.perf_counter() - started:.1f} s")
            edges = list(journal.iter_edges())
            gone = [e for e in edges if rng.random() < args.remove]
            removed_ids = {e.id for e in gone}
            scored = [e for e in edges if e.score is not None and e.id not in removed_ids]
            rescored = rng.sample(scored, int(len(scored) * args.rescore))
            records = rng.sample(list(journal.iter_nodes(["protein"])), args.drop_records)
            started = time.perf_counter()
            with journal.transaction() as con:
                removed = journal.remove_edges(
                    con, [(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to) for e in gone])
                updated = journal.update_edges(con, [
                    (e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score + 1, None)
                    for e in rescored])
                dropped = journal.remove_nodes(con, [(n.db, n.uid) for n in records])
            written = journal.max_ids().change
            spent = time.perf_counter() - started
            print(f"journal: {removed:,} links removed, {updated:,} scores updated, {dropped:,} "
                  f"records removed: {written:,} change rows in {spent:.2f} s "
                  f"({written / spent:,.0f} rows/s)")
            started = time.perf_counter()
            report = sink.sync(journal)
            spent = time.perf_counter() - started
            links_gone = written - updated - dropped
            print(f"sync: {report.changes:,} changes applied in {spent:.1f} s "
                  f"({report.changes / spent:,.0f} changes/s; {links_gone:,} links removed, "
                  f"{links_gone / spent:,.0f} links/s), repaired {report.repaired}, "
                  f"pending {report.pending}")
            print("store equals the journal:", sink.verify(journal) == [])
        journal.close()


if __name__ == "__main__":
    main()
