"""The request rate the client actually sends when every response takes a second.

An emulator on 127.0.0.1 answers after `--latency-ms` (default 1000) and enforces NCBI's
limit (`--rate-limit`, default 10/s, answering 429 above it); a client with `--rps` (default
10, its default settings otherwise) is called from `--threads` threads. From the emulator's own
request log we print the rate actually sent and the most requests seen in any one-second window.
Goal: >= 8.5 req/s and never more than 10 in a window (no 429), i.e. latency does not lower the
rate and the limiter never overshoots.

    python benchmarks/rate.py
    python benchmarks/rate.py --requests 300 --threads 24 --latency-ms 1500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.emulator import Emulator, World
from crawler.eutils.client import EutilsClient


def max_per_window(times: list[float], window: float = 1.0) -> int:
    """Most events in any closed interval [t, t + window]."""
    times = sorted(times)
    return max((bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=150, help="requests to send (default 150)")
    ap.add_argument("--threads", type=int, default=16, help="caller threads (default 16)")
    ap.add_argument("--rps", type=float, default=10.0, help="client rate (default 10)")
    ap.add_argument("--rate-limit", type=int, default=10, help="emulator limit (default 10)")
    ap.add_argument("--latency-ms", type=int, default=1000, help="emulator latency (default 1000)")
    args = ap.parse_args(argv)

    world = World.generate(seed=3, size=500)
    genes = list(world.uids("gene"))
    with tempfile.TemporaryDirectory() as rate_dir, Emulator(
        world, rate_limit=args.rate_limit, latency_ms=args.latency_ms
    ) as emu:
        os.environ["ENTREZ_GRAPH_RATE_DIR"] = rate_dir  # a private limiter: no stale state
        client = EutilsClient(base_url=emu.url, api_key="benchmark-key", rps=args.rps)
        counter = iter(range(args.requests))
        lock = threading.Lock()
        errors: list[str] = []

        def work() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                uid = genes[i % len(genes)]
                try:
                    client.elink("gene", [uid], db="protein", linkname="gene_protein")
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        start = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        client.close()
        log = [e for e in emu.log if str(e.get("path", "")).endswith("elink.fcgi")]

    times = sorted(float(e["time"]) for e in log)
    statuses = [int(e.get("status", 0)) for e in log]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else float("nan")
    print(f"requests sent (emulator log): {len(times)}  (client counted {client.requests_sent})")
    print(f"threads {args.threads}, client rps {args.rps}, emulator limit {args.rate_limit}/s, "
          f"latency {args.latency_ms} ms")
    print(f"wall time: {wall:.1f} s")
    print(f"rate actually sent: {rate:.2f} req/s (first to last request)")
    print(f"max requests in any 1-s window: {max_per_window(times)}")
    print(f"HTTP 429 answers: {statuses.count(429)}; errors raised: {len(errors)}")
    for e in errors[:5]:
        print("  ", e)
    ok = rate >= 8.5 and max_per_window(times) <= args.rps and not errors
    print("goal (>= 8.5 req/s, <= 10 per window, no errors):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
