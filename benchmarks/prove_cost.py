"""What the embedded store's proof costs: real counts against the journal's, beside the load.

The sink proves the store after every sync pass (design.md: a cursor is no evidence). This builds
a journal of N records, about 5 N links over four databases and N/5 summaries, loads it into a
new store and prints the time of the load and of the proof, then of a sync with nothing new.

    python benchmarks/prove_cost.py               # N = 100,000
    python benchmarks/prove_cost.py --records 400000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from crawler.journal import Journal
from crawler.sinks import ladybug as lb

DBS = ("gene", "protein", "pubmed", "nuccore")
TARGET = {"gene": "protein", "protein": "pubmed", "pubmed": "pubmed", "nuccore": "gene"}


def build(path: Path, records: int) -> Journal:
    journal = Journal(path)
    journal.add_nodes((DBS[i % 4], str(i), 1) for i in range(records))
    rows = []
    for a in range(records):
        source = DBS[a % 4]
        target = TARGET[source]
        for k in range(5):
            b = ((a * 7919 + k * 104729) % (records // 4)) * 4 + DBS.index(target)
            rows.append((source, str(a), f"{source}_{target}", target, str(b), None))
    journal.add_edges(rows)
    with journal.transaction():
        for i in range(records // 5):
            journal.set_props(DBS[i % 4], str(i),
                              {"name": f"N{i}", "organism": "Homo sapiens", "year": "2001 May"})
    return journal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="prove-cost-"))
    try:
        journal = build(folder / "store", args.records)
        stats = journal.stats()
        spent = {"proof": 0.0}
        verify = lb.LadybugSink.verify

        def timed(self: lb.LadybugSink, j: Journal) -> list:
            started = time.perf_counter()
            try:
                return verify(self, j)
            finally:
                spent["proof"] += time.perf_counter() - started

        lb.LadybugSink.verify = timed  # type: ignore[method-assign]
        started = time.perf_counter()
        sink = lb.LadybugSink(folder / "store" / "graph.lbdb")
        report = sink.sync(journal)
        load_s = time.perf_counter() - started
        print(f"journal: {stats['nodes']:,} records, {stats['edges']:,} links, "
              f"{report.props:,} summaries")
        print(f"first sync: {load_s:.2f} s, of which the proof {spent['proof']:.2f} s")
        spent["proof"] = 0.0
        started = time.perf_counter()
        sink.sync(journal)
        print(f"sync with nothing new: {time.perf_counter() - started:.3f} s, "
              f"of which the proof {spent['proof']:.3f} s")
        sink.close()
        journal.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
