"""`entrez-graph emulate`: serve a local E-utilities for offline work, tests and benchmarks.

A thin layer over `crawler.emulator.serve.emulate` (and `dump_world` for `--dump`).
"""

from __future__ import annotations

import signal
import sys

import click


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _poison_list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


@click.command("emulate")
@click.option("--world", "world_seed", type=int, default=None, metavar="SEED",
              help="Generate a world from this seed (deterministic; default seed 1).")
@click.option("--size", type=int, default=2000, show_default=True, metavar="N",
              help="Records in a generated world (links scale with it).")
@click.option("--graph", type=click.Path(dir_okay=False), default=None,
              help="Serve a link graph from a JSON-lines file (the --dump format).")
@click.option("--world-version", "world_version", type=click.IntRange(min=0), default=0,
              show_default=True, metavar="N",
              help="Serve the world after N steps of change: each drops 5% of the links, adds "
                   "5% new ones to the growing link names, and replaces or withdraws about 1% "
                   "of the records (reproducible; 0 = as generated or loaded).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              metavar="PORT",
              help="Port on 127.0.0.1 (0 picks a free one and prints it).")
@click.option("--rate-limit", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N",
              help="Requests per second per api_key or IP before HTTP 429 (0 = off).")
@click.option("--latency", type=click.FloatRange(min=0), default=0, show_default=True,
              metavar="MS",
              help="Milliseconds to wait before every answer.")
@click.option("--faults", default="", metavar="SPEC",
              help="Fault probabilities, e.g. 429=0.2,5xx=0.1,drop=0.05,truncate=0.05,"
                   "error=0.05,partial=0.05.")
@click.option("--fault-seed", type=int, default=0, show_default=True, metavar="SEED",
              help="Seed of the fault draws (reproducible runs).")
@click.option("--poison", default="", metavar="ID,...",
              help="IDs that make any request holding them fail with HTTP 400.")
@click.option("--log", "log", type=click.Path(dir_okay=False), default=None,
              help="Append every request as a JSON line (the API key redacted).")
@click.option("--dump", type=click.Path(dir_okay=False), default=None,
              help="Write the world's records and links as JSON lines and exit.")
def command(world_seed: int | None, size: int, graph: str | None, world_version: int, port: int,
            rate_limit: int,
            latency: float, faults: str, fault_seed: int, poison: str, log: str | None,
            dump: str | None) -> None:
    """Serve a local E-utilities (ELink, ESearch, EInfo, ESummary) until Ctrl-C.

    \b
    Examples:
      entrez-graph emulate --port 8765
      entrez-graph emulate --world 7 --size 50000 --rate-limit 3 --faults 429=0.1,5xx=0.05
      entrez-graph emulate --dump world.jsonl && entrez-graph emulate --graph world.jsonl
      entrez-graph emulate --port 8765 --world-version 1   # NCBI a month later
      entrez-graph emulate --log requests.jsonl --poison 672
    """
    from ..emulator.faults import parse_faults
    from ..emulator.serve import check_poison, dump_world, emulate

    if dump is not None:
        parse_faults(faults)  # a bad spec is refused even when only dumping
        check_poison(_poison_list(poison))
        report = dump_world(dump, world_seed=world_seed, size=size, graph=graph,
                            world_version=world_version)
        click.echo(f"Wrote {report.links} links and the records of {report.databases} "
                   f"databases to {report.path}")
        return
    emu = emulate(world_seed=world_seed, size=size, graph=graph, world_version=world_version,
                  port=port,
                  rate_limit=rate_limit, latency=latency, faults=faults, fault_seed=fault_seed,
                  poison=_poison_list(poison), log=log)
    what = (f"graph {graph}" if graph is not None
            else f"world seed {emu.world.seed}, size {emu.world.size}")
    if world_version:
        what += f", version {world_version}"
    # Ctrl-C and SIGTERM stop the server cleanly (log flushed), also when started in the
    # background, where a shell starts the process with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:  # Ctrl-C may come as soon as the URL is printed: stop the server whatever it interrupts
        click.echo(f"E-utilities emulator listening on {emu.url} ({what}; port {emu.port})")
        click.echo(f"Use: --eutils-url {emu.url}")
        click.echo("Press Ctrl-C to stop.")
        emu.serve_forever()
    except KeyboardInterrupt:
        emu.stop()
        click.echo("Stopped.", err=True)
        sys.exit(0)
