"""Crawl a large emulator world until at least a million edges; print edges/s and peak memory.

The emulator runs in its own process (`python -m crawler emulate --world 7 --size N --port 0`),
the crawl in another (`python -m crawler crawl …` with no practical rate limit), so the figures are
the crawler's alone: wall time end to end (first request to the last store load) and the crawl
process's peak resident memory (VmHWM sampled from /proc and ru_maxrss after it exits).

    python benchmarks/crawl_scale.py                  # world 7, size 600000, 10 genes, depth 3
    python benchmarks/crawl_scale.py --extra=--no-embedded    # the crawl without the store
    python benchmarks/crawl_scale.py --profile
    python benchmarks/crawl_scale.py --py-spy /tmp/crawl.txt   # then: where the threads spend time

By default the crawl runs to its natural end (so the embedded store is loaded too); with
`--stop-at-target` it is interrupted (SIGINT) as soon as the journal holds --target-edges edges.
`--profile` runs the crawl under cProfile and prints the top functions by cumulative time.
Goals (issues 4 and 11): peak memory <= 500 MB; >= 100,000 edges/s end to end on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The first genes of every generated world (BRCA1, TP53, BRCA2, EGFR, TNF, then generated ones):
# depth 3 in world 7 of size 600,000 gives over a million edges.
DEFAULT_SEEDS = ["gene:672", "gene:7157", "gene:675", "gene:1956", "gene:7124",
                 *(f"gene:{100001 + i}" for i in range(5))]
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/entrez/eutils/)")


def start_emulator(world: int, size: int, log: Path | None) -> tuple[subprocess.Popen, str]:
    """Start `entrez-graph emulate` in its own process; return it and the URL it printed."""
    cmd = [sys.executable, "-m", "crawler", "emulate", "--world", str(world), "--size", str(size),
           "--port", "0"]
    if log is not None:
        cmd += ["--log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    started = time.monotonic()
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        match = URL_RE.search(line)
        if match:
            # Keep draining the pipe so the emulator never blocks on a full stdout buffer.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            print(f"emulator ready in {time.monotonic() - started:.1f} s at {match.group(1)}")
            return proc, match.group(1)
    proc.wait()
    raise SystemExit("emulator exited before printing its URL:\n" + "".join(seen))


def rss_peak_kb(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, in kB; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc); 0.0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def journal_counts(journal: Path) -> tuple[int, int]:
    """(records, edges) in a journal being written by another process (WAL: readers never block)."""
    if not journal.exists():
        return 0, 0
    try:
        con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
        try:
            nodes = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
            edges = con.execute("SELECT count(*) FROM edges").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0, 0
    return nodes, edges


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--world", type=int, default=7, help="emulator world seed")
    ap.add_argument("--size", type=int, default=600_000, help="emulator world size (records)")
    ap.add_argument("--seed", action="append", default=None,
                    help=f"crawl seed db:uid (repeatable; default {' '.join(DEFAULT_SEEDS)})")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--target-edges", type=int, default=1_000_000)
    ap.add_argument("--stop-at-target", action="store_true",
                    help="interrupt the crawl once the journal holds --target-edges edges")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--rps", type=float, default=100_000.0)
    ap.add_argument("--extra", default="", help="extra crawl arguments, space separated")
    ap.add_argument("--store", type=Path, default=None, help="store dir (default: a temp dir)")
    ap.add_argument("--profile", action="store_true", help="run the crawl under cProfile")
    ap.add_argument("--py-spy", metavar="FILE", default=None,
                    help="sample the crawl with py-spy (pip install py-spy) into FILE, every "
                         "thread, collapsed stacks; memory figures are then py-spy's, not the "
                         "crawl's")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--eutils-url", default=None,
                    help="crawl an emulator already running at this URL instead of starting one "
                         "(e.g. one from another checkout, to compare crawlers on one world)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store afterwards")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="crawl-scale-"))
    store = args.store or tmp / "store"
    if args.eutils_url:
        emulator, url = None, args.eutils_url
        emulator_cpu_at_start = 0.0
    else:
        emulator, url = start_emulator(args.world, args.size, None)
    emulator_cpu_at_start = cpu_seconds(emulator.pid) if emulator is not None else 0.0
    env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(tmp / "rate"),
           "NCBI_EMAIL": os.environ.get("NCBI_EMAIL", "bench@example.org")}
    env.pop("NCBI_API_KEY", None)
    crawl = ["crawl", *(args.seed or DEFAULT_SEEDS), "--depth", str(args.depth),
             "--store", str(store), "--eutils-url", url, "--rps", str(args.rps),
             "--format", "json"]
    if args.batch_size:
        crawl += ["--batch-size", str(args.batch_size)]
    crawl += args.extra.split()
    prof = tmp / "crawl.prof"
    prefix = [sys.executable]
    if args.py_spy:
        prefix = [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                  "record", "-o", args.py_spy, "-f", "raw", "-r", "40", "-t", "--",
                  sys.executable]
    if args.profile:
        prefix += ["-m", "cProfile", "-o", str(prof)]
    cmd = [*prefix, "-m", "crawler", *crawl]
    print("crawl:", " ".join(cmd[1:]))

    journal = store / "journal.sqlite"
    samples: list[tuple[float, int, int]] = []
    peak_kb = 0
    reached_at: float | None = None
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    readers = [threading.Thread(target=lambda s=s, c=c: c.append(s.read()), daemon=True)
               for s, c in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    interrupted = False
    last_print = 0.0
    try:
        while proc.poll() is None:
            time.sleep(1.0)
            now = time.monotonic() - started
            peak_kb = max(peak_kb, rss_peak_kb(proc.pid))
            nodes, edges = journal_counts(journal)
            samples.append((now, nodes, edges))
            if reached_at is None and edges >= args.target_edges:
                reached_at = now
                if args.stop_at_target and not interrupted:
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
            if now - last_print >= 10:
                last_print = now
                print(f"  {now:7.1f} s  records {nodes:>9,}  edges {edges:>10,}  "
                      f"rss peak {peak_kb / 1024:7.1f} MB", flush=True)
            if now > args.timeout:
                proc.kill()
                print("timeout: crawl killed")
                break
        proc.wait()
        elapsed = time.monotonic() - started
        # Read now: only the crawl has been waited for; the emulator is still running.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        ru_kb = usage.ru_maxrss
        crawl_cpu = usage.ru_utime + usage.ru_stime
        emulator_cpu = (cpu_seconds(emulator.pid) - emulator_cpu_at_start
                        if emulator is not None else 0.0)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=30)
    for r in readers:
        r.join(timeout=5)
    nodes, edges = journal_counts(journal)
    stdout, stderr = "".join(out_chunks), "".join(err_chunks)

    print()
    note = " (interrupted at target)" if interrupted else ""
    print(f"exit code             {proc.returncode}{note}")
    print(f"records               {nodes:,}")
    print(f"edges                 {edges:,}")
    print(f"wall time             {elapsed:.1f} s")
    print(f"edges/s end to end    {edges / elapsed:,.0f}")
    if reached_at is not None:
        print(f"{args.target_edges:,} edges after   {reached_at:.1f} s "
              f"({args.target_edges / reached_at:,.0f} edges/s)")
    else:
        print(f"target of {args.target_edges:,} edges NOT reached: raise --depth or --size")
    print(f"CPU of the crawl      {crawl_cpu:.1f} s ({crawl_cpu / elapsed:.2f} cores)")
    if emulator is not None:
        print(f"CPU of the emulator   {emulator_cpu:.1f} s ({emulator_cpu / elapsed:.2f} cores)")
    with open("/proc/loadavg") as f:
        print(f"load average          {' '.join(f.read().split()[:3])}")
    print(f"peak RSS (VmHWM)      {peak_kb / 1024:.1f} MB")
    print(f"peak RSS (ru_maxrss)  {ru_kb / 1024:.1f} MB (the crawl process)")
    print(f"memory goal <= 500 MB {'met' if max(peak_kb, ru_kb) <= 500 * 1024 else 'MISSED'}")
    if proc.returncode not in (0, None) and not interrupted:
        print("crawl stderr (tail):\n" + "\n".join(stderr.splitlines()[-20:]))
    try:
        summary = json.loads(stdout)
    except ValueError:
        summary = None
    if summary:
        keys = ("complete", "depth", "levels", "nodes", "edges", "requests", "elapsed_s", "sinks")
        print("crawl summary:", json.dumps({k: summary.get(k) for k in keys}))
    if args.profile and prof.exists():
        print("\nprofile: top 30 by cumulative time")
        pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
        print("profile: top 25 by own time")
        pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    if args.keep or args.store:
        print(f"store: {store}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if reached_at is not None else 1


if __name__ == "__main__":
    sys.exit(main())
