"""Load a crawl journal into a new embedded store; print rows/s written and the peak memory.

This isolates the embedded-store load (`LadybugSink.sync`) from the crawl: the journal is made
once (a crawl with `--no-embedded` against the emulator, or any existing journal given with
`--journal`), then each run copies nothing but opens a NEW `graph.lbdb` in a temp dir and syncs
the whole journal into it, in a child process so that its peak RSS (`ru_maxrss`) is its own.

    python benchmarks/store_load.py                            # builds a 1M-edge journal first
    python benchmarks/store_load.py --journal STORE/journal.sqlite --runs 2
    python benchmarks/store_load.py --journal J --steps 3      # 3 syncs, as a crawl of depth 3

`--steps N` syncs in N passes over growing prefixes of the journal (a crawl syncs once per BFS
level, so the store is loaded in several passes, each opening no new sink). Goal (issue 4): the
crawl process, store load included, peaks at <= 500 MB for 1,000,000 edges.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Runs in the child: sync the journal into a new store, in `steps` passes over a growing prefix.
CHILD = r"""
import json, resource, sqlite3, sys, time
from pathlib import Path
from crawler.journal import Journal, MaxIds
from crawler.sinks import ladybug as lb

journal_path, graph, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
journal = Journal(journal_path, create=False)
full = lb.journal_snapshot(journal)
real_snapshot = lb.journal_snapshot
rows = nodes = edges = props = 0
started = time.perf_counter()
sink = lb.LadybugSink(graph)
try:
    for step in range(1, steps + 1):
        # A prefix of the journal, as if the crawl had only reached it: a crawl syncs per level.
        part = MaxIds(full.node * step // steps, full.edge * step // steps,
                      full.prop * step // steps)
        lb.journal_snapshot = lambda j, part=part: part
        report = sink.sync(journal)
        nodes += report.nodes; edges += report.edges; props += report.props
    lb.journal_snapshot = real_snapshot
finally:
    sink.close()
elapsed = time.perf_counter() - started
print(json.dumps({"nodes": nodes, "edges": edges, "props": props, "seconds": elapsed,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def build_journal(into: Path) -> Path:
    """Crawl the default 1M-edge world without the embedded store; return its journal."""
    cmd = [sys.executable, str(HERE / "crawl_scale.py"), "--extra=--no-embedded",
           "--store", str(into)]
    print("building the journal:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return into / "journal.sqlite"


def journal_rows(journal: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("nodes", "edges", "props"))
    finally:
        con.close()


def run_once(journal: Path, steps: int, env: dict[str, str]) -> dict:
    """One sync of the whole journal into a new store, in a child process."""
    tmp = Path(tempfile.mkdtemp(prefix="store-load-"))
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(journal), str(tmp / "graph.lbdb"),
                              str(steps)], env=env, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["store_mb"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) / 2**20
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--journal", type=Path, default=None,
                    help="journal.sqlite to load (default: build one with crawl_scale.py)")
    ap.add_argument("--runs", type=int, default=1, help="repeat the load this many times")
    ap.add_argument("--steps", type=int, default=1, help="syncs per load (growing prefixes)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the loading process (repeatable)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="store-load-journal-"))
    journal = args.journal or build_journal(tmp / "store")
    nodes, edges, props = journal_rows(journal)
    print(f"journal {journal}: {nodes:,} records, {edges:,} edges, {props:,} props rows")
    env = {**os.environ}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    for i in range(args.runs):
        r = run_once(journal, args.steps, env)
        rows = r["nodes"] + r["edges"] + r["props"]
        print(f"run {i + 1}: {rows:,} rows in {r['seconds']:.1f} s = {rows / r['seconds']:,.0f} "
              f"rows/s; peak RSS {r['maxrss_kb'] / 1024:.0f} MB; store {r['store_mb']:.0f} MB")
    if args.journal is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
