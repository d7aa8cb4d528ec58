"""`entrez-graph emulate`: serve a local E-utilities for offline work, tests and benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..emulator import Emulator, World, parse_faults
from ..errors import BadInput


def _poison_list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def emulate(*, world_seed: int | None = None, size: int = 2000, graph: str | None = None,
            port: int = 0, rate_limit: int = 0, latency: float = 0.0, faults: str = "",
            fault_seed: int = 0, poison: tuple[str, ...] = (), log: str | None = None,
            dump: str | None = None, echo=click.echo) -> Emulator | None:
    """Build the world; dump it (and return None) or serve it until interrupted."""
    if graph is not None and world_seed is not None:
        raise BadInput("give either --world SEED or --graph FILE, not both")
    if size < 1:
        raise BadInput(f"--size must be positive, got {size}")
    parse_faults(faults)  # BadInput before anything starts
    world = World.load(graph) if graph is not None else World.generate(
        seed=1 if world_seed is None else world_seed, size=size)
    if dump is not None:
        n = world.dump(dump)
        echo(f"Wrote {n} links and the records of {len(world.databases())} databases to {dump}")
        return None
    emu = Emulator(world, rate_limit=rate_limit, latency_ms=latency, faults=faults,
                   poison=poison, log_path=log, port=port, fault_seed=fault_seed)
    try:
        emu.start()
    except OSError as exc:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    what = (f"graph {graph}" if graph is not None
            else f"world seed {world.seed}, size {world.size}")
    echo(f"E-utilities emulator listening on {emu.url} ({what}; port {emu.port})")
    echo(f"Use: --eutils-url {emu.url}")
    echo("Press Ctrl-C to stop.")
    return emu


@click.command("emulate")
@click.option("--world", "world_seed", type=int, default=None,
              help="Generate a world from this seed (deterministic; default seed 1).")
@click.option("--size", type=int, default=2000, show_default=True,
              help="Records in a generated world (links scale with it).")
@click.option("--graph", type=click.Path(dir_okay=False), default=None,
              help="Serve a link graph from a JSON-lines file (the --dump format).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one and prints it).")
@click.option("--rate-limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Requests per second per api_key or IP before HTTP 429 (0 = off).")
@click.option("--latency", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Milliseconds to wait before every answer.")
@click.option("--faults", default="", metavar="SPEC",
              help="Fault probabilities, e.g. 429=0.2,5xx=0.1,drop=0.05,truncate=0.05,"
                   "error=0.05,partial=0.05.")
@click.option("--fault-seed", type=int, default=0, show_default=True,
              help="Seed of the fault draws (reproducible runs).")
@click.option("--poison", default="", metavar="ID,...",
              help="IDs that make any request holding them fail with HTTP 400.")
@click.option("--log", "log", type=click.Path(dir_okay=False), default=None,
              help="Append every request as a JSON line (the API key redacted).")
@click.option("--dump", type=click.Path(dir_okay=False), default=None,
              help="Write the world's records and links as JSON lines and exit.")
def command(world_seed: int | None, size: int, graph: str | None, port: int, rate_limit: int,
            latency: float, faults: str, fault_seed: int, poison: str, log: str | None,
            dump: str | None) -> None:
    """Serve a local E-utilities (ELink, ESearch, EInfo, ESummary) until Ctrl-C."""
    if graph is not None and not Path(graph).is_file():
        raise BadInput(f"graph file {graph!r} does not exist")
    emu = emulate(world_seed=world_seed, size=size, graph=graph, port=port,
                  rate_limit=rate_limit, latency=latency, faults=faults, fault_seed=fault_seed,
                  poison=_poison_list(poison), log=log, dump=dump)
    if emu is None:
        return
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)
        sys.exit(0)
