"""How many E-utilities requests a crawl sends, against the minimum and against the naive pattern.

Runs the real CLI (`python -m crawler crawl …`) against an in-process emulator and counts the
requests in the emulator's log, for the default route (acheck, then one neighbor request per link
name and batch) and for `--discovery all` (one `cmd=neighbor&db=all` request per batch), whose
graph must be the same and which sends at most one request per (database, batch) per level.
For the batch size B used, the minimum of the acheck route is, for every BFS level and database:
ceil(records expanded / B) acheck requests (none when --link names the link names) plus, for every
link name fetched, ceil(records that have that link / B) neighbor requests. The naive
pattern is one elink call per record per link name. Goals (issue 4): <= 1.1x the minimum with
B >= 200, and >= 50x fewer requests than naive.

    python benchmarks/requests.py                     # world 3, size 6000, 6 gene seeds, depth 2
    python benchmarks/requests.py --batch-size 500 --depth 3 --summaries

With --summaries (issue 7) it also prints ESummary requests per 1,000 records.
It also grows a crawl (issue 13): depth 1, then --depth 2, then one more --link name or seed,
into one store, and prints the requests of those growths beside a fresh crawl with the final
settings, and whether the graphs are the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from crawler.emulator import Emulator, World


def _param(params: Any, key: str) -> str | None:
    """One parameter of a logged request (the log may hold lists, as parse_qs gives)."""
    if not isinstance(params, dict):
        return None
    value = params.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _ids(params: Any) -> list[str]:
    """The IDs a logged request carried: repeated id= and comma lists alike."""
    value = params.get("id") if isinstance(params, dict) else None
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [i for v in values for i in str(v).split(",") if i]


def pick_seeds(world: World, count: int) -> list[str]:
    """gene:672 plus the first few other genes of the world (deterministic for a world)."""
    seeds = ["gene:672"]
    for uid in world.uids("gene"):
        if len(seeds) >= count:
            break
        if str(uid) != "672":
            seeds.append(f"gene:{uid}")
    return seeds


def _journal_figures(
    con: sqlite3.Connection, depth: int
) -> tuple[int, int, list[tuple[int, str, str]], dict[str, int]]:
    """Records, edges, the expanded records (depth, db, uid) and records per database."""
    records = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
    edges = con.execute("SELECT count(*) FROM edges").fetchone()[0]
    expanded = con.execute(
        "SELECT depth, db, uid FROM nodes "
        "WHERE state IN ('done', 'failed', 'no_answer') AND depth < ?",
        (depth,),
    ).fetchall()
    by_db = dict(con.execute("SELECT db, count(*) FROM nodes GROUP BY db").fetchall())
    return records, edges, expanded, by_db


def _elink_count(log: list[dict]) -> int:
    return sum(1 for e in log if "elink" in str(e.get("path", "")))


def grow_figures(args: argparse.Namespace, world: World, seeds: list[str]) -> None:
    """Requests of a grown crawl (step by step into one store) beside a fresh crawl with the
    final settings, through the real CLI."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-grow-"))
    env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(tmp / "rate"),
           "NCBI_EMAIL": "bench@example.org"}
    env.pop("NCBI_API_KEY", None)
    extra_seed = pick_seeds(world, len(seeds) + 1)[-1]
    depth = str(max(args.depth, 2))
    steps = [[*seeds, "--depth", "1"], ["--depth", depth], [extra_seed]]
    # the settings after each step, as a fresh crawl would be given them
    settings = [[*seeds, "--depth", "1"], [*seeds, "--depth", depth],
                [*seeds, extra_seed, "--depth", depth]]
    final = settings[-1]

    def run(store: Path, emu: Emulator, extra: list[str]) -> tuple[int, float]:
        before = len(emu.log)
        cmd = [sys.executable, "-m", "crawler", "crawl", *extra, "--store", str(store),
               "--eutils-url", emu.url, "--rps", "100000", "--batch-size", str(args.batch_size),
               "--format", "json", "--no-embedded"]
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n")
            raise SystemExit(f"crawl failed with exit code {proc.returncode}")
        return _elink_count(emu.log[before:]), time.monotonic() - started

    def graph(store: Path) -> tuple[set, set]:
        con = sqlite3.connect(store / "journal.sqlite")
        try:
            return (set(con.execute("SELECT db, uid, depth FROM nodes")),
                    set(con.execute("SELECT dbfrom, uid_from, linkname, dbto, uid_to, score "
                                    "FROM edges")))
        finally:
            con.close()

    try:
        with Emulator(world, rate_limit=0) as emu:
            print()
            print("growing a crawl (elink requests per step, --no-embedded):")
            grown = 0
            for i, step in enumerate(steps):
                n, secs = run(tmp / "grown", emu, step)
                grown += n if i else 0
                print(f"  {'crawl' if i == 0 else 'grow '} {' '.join(step):<40} {n:>6,} requests "
                      f"({secs:.1f} s)")
            over = 0  # starting over at each step instead of growing
            for i, step in enumerate(settings[1:], 1):
                n, secs = run(tmp / f"fresh{i}", emu, step)
                over += n
            fresh = n
        print(f"  fresh crawl with the final settings {' '.join(final)}: {fresh:,} requests "
              f"({secs:.1f} s)")
        print(f"  the growths asked {grown:,} requests; starting over at each step would have "
              f"asked {over:,} ({over / max(grown, 1):.1f}x more)")
        same = graph(tmp / "grown") == graph(tmp / f"fresh{len(settings) - 1}")
        print(f"  same graph as the fresh crawl: {'yes' if same else 'NO'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_crawl(
    args: argparse.Namespace, world: World, seeds: list[str], discovery: str
) -> tuple[list[dict], subprocess.CompletedProcess[str], float, tuple, tuple[set, set]]:
    """One crawl through the real CLI; (emulator log, process, seconds, figures, graph)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    store = tmp / "store"
    env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(tmp / "rate"),
           "NCBI_EMAIL": "bench@example.org"}
    env.pop("NCBI_API_KEY", None)
    with Emulator(world, rate_limit=0) as emu:
        cmd = [sys.executable, "-m", "crawler", "crawl", *seeds, "--depth", str(args.depth),
               "--store", str(store), "--eutils-url", emu.url, "--rps", "100000",
               "--batch-size", str(args.batch_size), "--format", "json",
               "--discovery", discovery]
        for name in args.link:
            cmd += ["--link", name]
        if args.summaries:
            cmd.append("--summaries")
        print("crawl:", " ".join(cmd[3:]))
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        crawl_s = time.monotonic() - started
        log = list(emu.log)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        raise SystemExit(f"crawl failed with exit code {proc.returncode}")
    con = sqlite3.connect(store / "journal.sqlite")
    try:
        figures = _journal_figures(con, args.depth)
        graph = (set(con.execute("SELECT db, uid, depth FROM nodes")),
                 set(con.execute("SELECT dbfrom, uid_from, linkname, dbto, uid_to, score "
                                 "FROM edges")))
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return log, proc, crawl_s, figures, graph


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--world", type=int, default=3, help="generated world seed")
    ap.add_argument("--size", type=int, default=6000, help="generated world size")
    ap.add_argument("--seeds", type=int, default=6, help="how many gene seeds (gene:672 first)")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--link", action="append", default=[], help="pass --link NAME to the crawl")
    ap.add_argument("--summaries", action="store_true", help="crawl with --summaries (issue 7)")
    args = ap.parse_args()

    t0 = time.monotonic()
    world = World.generate(seed=args.world, size=args.size)
    seeds = pick_seeds(world, args.seeds)
    log, proc, crawl_s, figures, graph = run_crawl(args, world, seeds, "acheck")
    records, edges, expanded, by_db = figures
    all_log, _, all_s, all_figures, all_graph = run_crawl(args, world, seeds, "all")

    kinds: Counter[str] = Counter()
    fetched: set[str] = set()
    neighbor_ids = 0
    for entry in log:
        path = str(entry.get("path", ""))
        params = entry.get("params", {})
        if "elink" in path:
            cmd_name = _param(params, "cmd") or "neighbor"
            kinds[f"elink {cmd_name}"] += 1
            if cmd_name == "neighbor":
                neighbor_ids += len(_ids(params))
                linkname = _param(params, "linkname")
                if linkname:
                    fetched.add(linkname)
        else:
            kinds[path.rsplit("/", 1)[-1] or path] += 1
    sent = sum(kinds.values())
    elink_sent = sum(v for k, v in kinds.items() if k.startswith("elink"))

    # The minimum for batch size B, and the naive one-call-per-record-per-link-name count,
    # from the emulator's own world: which of the link names the crawl fetched each record has.
    B = args.batch_size
    level_db: Counter[tuple[int, str]] = Counter()
    with_link: Counter[tuple[int, str, str]] = Counter()
    for depth, db, uid in expanded:
        level_db[(depth, db)] += 1
        for linkname in {link.linkname for link in world.links_from(db, uid)} & fetched:
            with_link[(depth, db, linkname)] += 1
    acheck_needed = not args.link
    min_acheck = sum(math.ceil(n / B) for n in level_db.values()) if acheck_needed else 0
    min_neighbor = sum(math.ceil(n / B) for n in with_link.values())
    minimum = min_acheck + min_neighbor
    naive = sum(with_link.values())
    per_link: dict[str, int] = defaultdict(int)
    for (_, _, linkname), n in with_link.items():
        per_link[linkname] += n

    print()
    print(f"world {args.world} size {args.size}; seeds {len(seeds)}; depth {args.depth}; "
          f"setup+crawl {time.monotonic() - t0:.1f} s (crawl {crawl_s:.1f} s)")
    print(f"records {records:,}  edges {edges:,}  expanded {len(expanded):,}  "
          f"link names fetched {len(fetched)}")
    print(f"batch size used            {B}")
    detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    print(f"requests sent (emulator)   {sent:,}  ({detail})")
    print(f"elink requests             {elink_sent:,}")
    print(f"minimum for B={B:<5}         {minimum:,}  "
          f"(acheck {min_acheck}, neighbor {min_neighbor})")
    ratio_min = elink_sent / minimum if minimum else float("nan")
    print(f"elink / minimum            {ratio_min:.3f}x   goal <= 1.1x "
          f"{'met' if ratio_min <= 1.1 and B >= 200 else 'MISSED'}")
    print(f"naive (1 per record/link)  {naive:,}")
    ratio_naive = naive / elink_sent if elink_sent else float("nan")
    print(f"naive / elink              {ratio_naive:.1f}x fewer   goal >= 50x "
          f"{'met' if ratio_naive >= 50 else 'MISSED'}")
    print(f"IDs per neighbor request   {neighbor_ids / max(kinds['elink neighbor'], 1):.1f}")
    if args.summaries:
        esummary = sum(v for k, v in kinds.items() if "esummary" in k)
        print(f"esummary requests          {esummary:,} for {records:,} records = "
              f"{1000 * esummary / max(records, 1):.2f} per 1,000 records")
        print(f"esummary min (500 IDs/req) {sum(math.ceil(n / 500) for n in by_db.values())}")
    try:
        summary = json.loads(proc.stdout)
        print("crawl summary:", json.dumps(summary, sort_keys=True)[:1500])
    except ValueError:
        pass
    # --discovery all: one db=all request per (database, batch) per level
    all_kinds = Counter(
        f"elink {_param(e.get('params', {}), 'cmd') or 'neighbor'}"
        if "elink" in str(e.get("path", "")) else str(e.get("path", "")).rsplit("/", 1)[-1]
        for e in all_log
    )
    all_elink = sum(v for k, v in all_kinds.items() if k.startswith("elink"))
    all_expanded = all_figures[2]
    level_db_all: Counter[tuple[int, str]] = Counter((d, db) for d, db, _ in all_expanded)
    bound = sum(math.ceil(n / B) for n in level_db_all.values())
    print()
    print(f"--discovery all            {all_elink:,} elink requests "
          f"({', '.join(f'{k} {v}' for k, v in sorted(all_kinds.items()))}; crawl {all_s:.1f} s)")
    print(f"  at most 1 per (database, batch) per level: {bound:,}   "
          f"{'met' if all_elink <= bound else 'MISSED'}")
    print(f"  acheck route / all route {elink_sent / max(all_elink, 1):.1f}x more requests")
    print(f"  same graph as the acheck route: {'yes' if all_graph == graph else 'NO'} "
          f"({len(all_graph[0]):,} records, {len(all_graph[1]):,} edges)")
    print("top link names by records:",
          ", ".join(f"{k} {v}" for k, v in sorted(per_link.items(), key=lambda kv: -kv[1])[:8]))
    grow_figures(args, world, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
