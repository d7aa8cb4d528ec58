"""Write `entrez-graph view` pages of growing size and time them, in Python and in a browser.

For each size a synthetic journal is built (benchmarks/export.py's builder: about five links
per record over five databases), the whole store is written as a view, and the page is loaded in
headless Chromium (when installed) until vis-network has laid it out and drawn it. Printed: the
records and links, the time to write the file, its size, and Chromium's wall time to a drawn,
laid-out page minus its wall time for an empty page (start-up), with the counts the page reports.

    python benchmarks/view.py                       # 500, 1000 and 2500 records
    python benchmarks/view.py --records 2500 --keep /tmp/viewbench
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export import build  # the same synthetic journal as the export benchmark

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--disable-extensions"]


def chromium_seconds(chromium: str, url: str, profile: Path) -> tuple[float, dict[str, str]]:
    """Wall time of one headless run until the DOM is dumped, and <body>'s data attributes."""
    start = time.perf_counter()
    proc = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         "--virtual-time-budget=600000", "--dump-dom", url],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    seconds = time.perf_counter() - start
    body = re.search(r"<body([^>]*)>", proc.stdout)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body[1])) if body else {}
    return seconds, attrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[500, 1000, 2500])
    parser.add_argument("--keep", type=Path, default=None, help="work directory to keep")
    args = parser.parse_args()
    from crawler.viewing import write_view

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    work = args.keep or Path(tempfile.mkdtemp(prefix="view-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        baseline = None
        if chromium:
            empty = work / "empty.html"
            empty.write_text("<!DOCTYPE html><title>empty</title>", encoding="utf-8")
            baseline, _ = chromium_seconds(chromium, empty.as_uri(), work / "profile")
            print(f"chromium start-up (empty page): {baseline:.1f} s")
        else:
            print("chromium not installed: only the Python side is measured")
        print(f"{'records':>8} {'links':>8} {'write s':>8} {'MB':>6} {'browser s':>10}  "
              "page reports")
        for records in args.records:
            store = work / f"store-{records}"
            if not (store / "journal.sqlite").exists():
                build(store, records * 5)
            out = work / f"view-{records}.html"
            start = time.perf_counter()
            report = write_view(store, out, max_nodes=records * 2, force=True)
            write_s = time.perf_counter() - start
            size = out.stat().st_size / 1e6
            shown = "-"
            browser = "-"
            if chromium and baseline is not None:
                seconds, attrs = chromium_seconds(chromium, out.as_uri(), work / "profile")
                browser = f"{seconds - baseline:.1f}"
                shown = (f"drawn {attrs.get('drawn-nodes')} records, {attrs.get('drawn-edges')} "
                         f"links, laid out {attrs.get('stabilized') == '1'}, "
                         f"requests blocked {attrs.get('blocked')}")
            print(f"{report.nodes:>8,} {report.edges:>8,} {write_s:>8.2f} {size:>6.1f} "
                  f"{browser:>10}  {shown}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
