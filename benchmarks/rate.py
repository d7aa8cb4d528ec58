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
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.eutils.client import EutilsClient

URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/entrez/eutils/)")
GENES = ["672", "675", "7157", "1956", "7124"]  # present in every generated world


def max_per_window(times: list[float], window: float = 1.0) -> int:
    """Most events in any closed interval [t, t + window]."""
    times = sorted(times)
    return max((bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


def start_emulator(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process, so its timestamps do not share our GIL."""
    cmd = [sys.executable, "-m", "crawler", "emulate", "--world", "3", "--size", "500",
           "--port", "0", "--rate-limit", str(args.rate_limit),
           "--latency", str(args.latency_ms), "--log", str(log)]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=150, help="requests to send (default 150)")
    ap.add_argument("--threads", type=int, default=16, help="caller threads (default 16)")
    ap.add_argument("--rps", type=float, default=10.0, help="client rate (default 10)")
    ap.add_argument("--rate-limit", type=int, default=10, help="emulator limit (default 10)")
    ap.add_argument("--latency-ms", type=int, default=1000, help="emulator latency (default 1000)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "emulator.jsonl"
        emulator, url = start_emulator(args, log_path)
        try:
            # a private limiter file: no state left by other runs
            os.environ["ENTREZ_GRAPH_RATE_DIR"] = str(Path(tmp) / "rates")
            client = EutilsClient(base_url=url, api_key="benchmark-key", rps=args.rps)
            counter = iter(range(args.requests))
            lock = threading.Lock()
            errors: list[str] = []

            def work() -> None:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    try:
                        client.elink("gene", [GENES[i % len(GENES)]], db="protein",
                                     linkname="gene_protein")
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
            time.sleep(0.2)  # let the emulator flush its last log lines
            log = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)

    log = [e for e in log if str(e.get("path", "")).endswith("elink.fcgi")]
    times = sorted(float(e["time"]) for e in log)
    statuses = [int(e.get("status", 0)) for e in log]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else float("nan")
    worst = max_per_window(times)
    print(f"requests sent (emulator log): {len(times)}  (client counted {client.requests_sent})")
    print(f"threads {args.threads}, client rps {args.rps}, emulator limit {args.rate_limit}/s, "
          f"latency {args.latency_ms} ms")
    print(f"wall time: {wall:.1f} s")
    print(f"rate actually sent: {rate:.2f} req/s (first to last request)")
    print(f"max requests in any 1-s window: {worst}")
    print(f"HTTP 429 answers: {statuses.count(429)}; errors raised: {len(errors)}")
    for e in errors[:5]:
        print("  ", e)
    ok = rate >= 0.85 * args.rps and worst <= args.rps and not errors
    print(f"goal (>= {0.85 * args.rps:g} req/s, <= {args.rps:g} per window, no errors):",
          "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
