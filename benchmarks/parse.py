"""ELink parse throughput: the fast C-backed reader against the Bio.Entrez path, on big answers.

Renders answers with the emulator's own renderer (the exact bytes it serves): `--ids` IDs x
`--links` pubmed_pubmed links (neighbor, and neighbor_score with scores), and an acheck answer of
`--ids` IDs x 20 link names. Each is parsed `--runs` times by `parse.parse_elink` (the fast reader)
and by `parse.parse_elink_entrez` (Bio.Entrez, as before); prints links (or LinkInfos) per CPU
second, MB/s, the best CPU time and the peak Python memory of one parse (tracemalloc), and checks
that both give equal results.

    python benchmarks/parse.py
    python benchmarks/parse.py --ids 500 --links 1000 --runs 3
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.emulator import render
from crawler.eutils import parse


def neighbor_body(ids: int, links: int, scores: bool) -> bytes:
    return render.elink_neighbor("pubmed", [
        ([str(1_000_000 + i)], [("pubmed", "pubmed_pubmed",
                                 [(str(30_000_000 + i * links + k), 90_000_000 - k)
                                  for k in range(links)])])
        for i in range(ids)
    ], scores=scores)


def acheck_body(ids: int) -> bytes:
    infos = [("pubmed", f"pubmed_link_{k}", f"Menu {k}", f"Html {k}", 128 + k) for k in range(20)]
    return render.elink_acheck("pubmed", [[(str(1_000_000 + i), infos) for i in range(ids)]])


def count(result: object, cmd: str) -> int:
    if cmd == "acheck":
        return sum(len(s.infos) for s in result.idlinksets)  # type: ignore[attr-defined]
    return sum(len(d.links) for ls in result.linksets for d in ls.linksetdbs)  # type: ignore[attr-defined]


def measure(fn: object, body: bytes, cmd: str, runs: int) -> tuple[float, int, object]:
    best = float("inf")
    result: object = None
    for _ in range(runs):
        t0 = time.process_time()  # CPU time: the machine is shared, wall time is noise
        result = fn(body, cmd)  # type: ignore[operator]
        best = min(best, time.process_time() - t0)
    tracemalloc.start()
    fn(body, cmd)  # type: ignore[operator]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ids", type=int, default=200, help="IDs per answer (default 200)")
    ap.add_argument("--links", type=int, default=500, help="links per ID (default 500)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs, best kept (default 3)")
    args = ap.parse_args(argv)

    cases = [
        ("neighbor", neighbor_body(args.ids, args.links, scores=False), "neighbor"),
        ("neighbor_score", neighbor_body(args.ids, args.links, scores=True), "neighbor_score"),
        ("acheck", acheck_body(args.ids), "acheck"),
    ]
    print(f"{args.ids} IDs x {args.links} pubmed_pubmed links (acheck: {args.ids} IDs x 20 "
          f"link names), best of {args.runs}")
    print(f"{'answer':<15} {'MB':>6} {'items':>9}  {'path':<10} {'CPU s':>7} {'items/s':>11} "
          f"{'MB/s':>6} {'peak MB':>8}")
    ok = True
    for label, body, cmd in cases:
        rows = []
        for path, fn in (("Bio.Entrez", parse.parse_elink_entrez), ("fast", parse.parse_elink)):
            best, peak, result = measure(fn, body, cmd, args.runs)
            rows.append((path, best, peak, result))
        same = rows[0][3] == rows[1][3]
        ok = ok and same
        items = count(rows[1][3], cmd)
        mb = len(body) / 1e6
        for path, best, peak, _ in rows:
            print(f"{label:<15} {mb:6.1f} {items:9,d}  {path:<10} {best:7.3f} "
                  f"{items / best:11,.0f} {mb / best:6.1f} {peak / 1e6:8.1f}")
        print(f"{'':<15} fast / Bio.Entrez: {rows[0][1] / rows[1][1]:.1f}x faster, "
              f"results {'equal' if same else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
