"""The request rate the `crawl` command itself sends when every response takes 1 s or 3 s.

For each latency, an emulator in its own process (NCBI's limit, `--rate-limit` 10 by default,
answering 429 above it, every request logged) serves a generated world, and the real command
`python -m crawler crawl SEEDS --depth D --store … --eutils-url …` runs against it with its
default options otherwise (acheck route, batches of 200, requests in flight sized by the crawl
itself, embedded store on), with NCBI_API_KEY set to a dummy so the client allows 10/s. From the
emulator's log we print the mean rate sent (first to last request), the most requests that
reached the server in any one-second window, the 429 answers, and the command's wall time (start
to exit, the embedded store's load included) over requests / limit. Goals (issue 11): mean
>= 9.3 req/s, <= 10 in every window, no 429, with >= 300 requests per run; at 500 ms latency, wall
time <= 1.3 x requests / 10 per second (`--latency-ms 500`).

    python benchmarks/rate.py                              # 1 s and 3 s latency
    python benchmarks/rate.py --latency-ms 500 --latency-ms 2000 --dbs gene --per-db 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.emulator import World

DBS = "gene,protein,nuccore,pubmed,snp,clinvar,structure,biosample"
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/entrez/eutils/)")


def max_per_window(times: list[float], window: float = 1.0) -> int:
    """Most events in any half-open interval [t, t + window)."""
    times = sorted(times)
    return max((bisect_right(times, t + window - 1e-9) - i for i, t in enumerate(times)),
               default=0)


def start_emulator(args: argparse.Namespace, latency_ms: int, log: Path
                   ) -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process, so its timestamps do not share the crawl's GIL."""
    cmd = [sys.executable, "-m", "crawler", "emulate", "--world", str(args.world),
           "--size", str(args.size), "--port", "0", "--rate-limit", str(args.rate_limit),
           "--latency", str(latency_ms), "--log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        match = URL_RE.search(line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, match.group(1)
    proc.wait()
    raise SystemExit("emulator exited before printing its URL:\n" + "".join(seen))


def seeds_of(world: int, size: int, dbs: list[str], per_db: int) -> list[str]:
    """The first `per_db` records of each database of the world (deterministic)."""
    generated = World.generate(seed=world, size=size)
    seeds = []
    for db in dbs:
        for i, uid in enumerate(generated.uids(db)):
            if i >= per_db:
                break
            seeds.append(f"{db}:{uid}")
    return seeds


def run_once(args: argparse.Namespace, latency_ms: int, tmp: Path) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / f"emulator-{latency_ms}.jsonl"
    emulator, url = start_emulator(args, latency_ms, log_path)
    try:
        env = dict(os.environ, NCBI_API_KEY="benchmark-dummy-key",
                   NCBI_EMAIL="benchmark@example.org",
                   ENTREZ_GRAPH_RATE_DIR=str(tmp / f"rates-{latency_ms}"))
        env.pop("ENTREZ_GRAPH_EUTILS_URL", None)
        seeds = tmp / "seeds.txt"
        seeds.write_text("\n".join(seeds_of(args.world, args.size, args.dbs.split(","),
                                             args.per_db)) + "\n")
        cmd = [sys.executable, "-m", "crawler", "crawl", "--seeds-file", str(seeds),
               "--depth", str(args.depth),
               "--store", str(tmp / f"store-{latency_ms}"), "--eutils-url", url,
               "--format", "json", *args.crawl_arg]
        started = time.time()  # the emulator's log is in epoch seconds too
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        ended = time.time()
        wall = ended - started
        time.sleep(0.3)  # let the emulator flush its last log lines
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    times = sorted(float(e["time"]) for e in log)
    statuses = [int(e.get("status", 0)) for e in log]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "latency_ms": latency_ms,
        "requests": len(times),
        "edges": report["edges"],
        "wall_s": wall,
        "span_s": span,
        "rate": (len(times) - 1) / span if span > 0 else float("nan"),
        "max_window": max_per_window(times),
        "429": statuses.count(429),
        "before_s": times[0] - started if times else float("nan"),
        "after_s": ended - times[-1] if times else float("nan"),
        "max_lag_s": max((float(e.get("lag", 0.0)) for e in log), default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--latency-ms", type=int, action="append",
                    help="emulator latency; repeatable (default: 1000 and 3000)")
    ap.add_argument("--rate-limit", type=int, default=10, help="emulator limit (default 10)")
    ap.add_argument("--world", type=int, default=3, help="world seed (default 3)")
    ap.add_argument("--size", type=int, default=20000, help="world size (default 20000)")
    ap.add_argument("--dbs", default=DBS, help=f"databases of the seeds (default {DBS})")
    ap.add_argument("--per-db", type=int, default=500, help="seeds per database (default 500)")
    ap.add_argument("--depth", type=int, default=2, help="crawl depth (default 2)")
    ap.add_argument("--runs", type=int, default=1,
                    help="runs per latency (median and worst printed; default 1)")
    ap.add_argument("--keep", metavar="DIR", help="keep the stores and emulator logs in DIR")
    ap.add_argument("--crawl-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `crawl` (repeatable), e.g. --crawl-arg=--no-embedded")
    args = ap.parse_args(argv)
    latencies = args.latency_ms or [1000, 3000]

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for run, latency in ((run, lat) for lat in latencies for run in range(args.runs)):
            r = run_once(args, latency, Path(tmp) / f"run{run}")
            r["load"] = os.getloadavg()[0]
            results.append(r)
            print(f"[load {r['load']:.1f}] latency {latency} ms: {r['requests']} requests "
                  f"({r['edges']} edges) in "
                  f"{r['wall_s']:.1f} s wall; mean {r['rate']:.2f} req/s over {r['span_s']:.1f} s "
                  f"(first to last request); max {r['max_window']} in any 1-s window; "
                  f"{r['429']} x 429; wall / (requests / {args.rate_limit}/s) = "
                  f"{r['wall_s'] / (r['requests'] / args.rate_limit):.2f} (start to first request "
                  f"{r['before_s']:.1f} s, last request to exit {r['after_s']:.1f} s; the "
                  f"emulator's threads got to a request up to {r['max_lag_s'] * 1000:.0f} ms after "
                  f"it arrived)", flush=True)
    limit = args.rate_limit
    if args.runs > 1:
        for latency in latencies:
            rs = [r for r in results if r["latency_ms"] == latency]
            ratio = sorted(r["wall_s"] / (r["requests"] / limit) for r in rs)
            rate = sorted(r["rate"] for r in rs)
            print(f"latency {latency} ms, {len(rs)} runs (load {min(r['load'] for r in rs):.1f}"
                  f"-{max(r['load'] for r in rs):.1f}): mean req/s median "
                  f"{statistics.median(rate):.2f}, worst {rate[0]:.2f}; max in a 1-s window "
                  f"{max(r['max_window'] for r in rs)}; 429s {sum(r['429'] for r in rs)}; wall "
                  f"ratio median {statistics.median(ratio):.2f}, worst {ratio[-1]:.2f}")
    ok = all(r["requests"] >= 300 and r["rate"] >= 0.93 * limit and r["max_window"] <= limit
             and r["429"] == 0 for r in results)
    print(f"goal (>= 300 requests, mean >= {0.93 * limit:g} req/s, <= {limit} per window, "
          f"no 429): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
