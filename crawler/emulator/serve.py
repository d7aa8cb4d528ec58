"""`emulate`: a local E-utilities built from a generated or loaded world, started for you.

The Python side of `entrez-graph emulate`. `emulate()` returns a running `Emulator` (stop it,
or use it as a context manager); `dump_world()` writes a world as JSON lines instead of serving
it. Both check their arguments before building anything, so bad input is one `BadInput`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from .faults import parse_faults
from .server import Emulator
from .world import World

DEFAULT_SIZE = 2000
DEFAULT_WORLD_SEED = 1


def build_world(
    *, world_seed: int | None = None, size: int = DEFAULT_SIZE, graph: str | Path | None = None
) -> World:
    """A world generated from `world_seed` (default 1) with `size` records, or loaded from the
    JSON-lines file `graph` (the dump format); not both."""
    if graph is not None and world_seed is not None:
        raise BadInput("give either --world SEED or --graph FILE, not both")
    if size < 1:
        raise BadInput(f"--size must be positive, got {size}")
    if graph is not None:
        if not Path(graph).is_file():
            raise BadInput(f"graph file {str(graph)!r} does not exist")
        return World.load(graph)
    return World.generate(seed=DEFAULT_WORLD_SEED if world_seed is None else world_seed, size=size)


def emulate(
    *,
    world: World | None = None,
    world_seed: int | None = None,
    size: int = DEFAULT_SIZE,
    graph: str | Path | None = None,
    port: int = 0,
    rate_limit: int = 0,
    latency: float = 0.0,
    faults: str = "",
    fault_seed: int = 0,
    poison: Iterable[str] = (),
    log: str | Path | None = None,
) -> Emulator:
    """Start a local E-utilities on 127.0.0.1 and return it running (`emu.url`, `emu.port`).

    The world is `world`, or built by `build_world(world_seed=, size=, graph=)`. `port` 0 picks a
    free port; `rate_limit` answers HTTP 429 above that many requests per second (0: off);
    `latency` is milliseconds before each answer; `faults` is a spec such as `429=0.2,5xx=0.1`;
    `poison` IDs make any request holding them fail with HTTP 400; `log` appends every request
    as a JSON line. Stop it with `emu.stop()`, or use `with emulate(...) as emu:`;
    `emu.serve_forever()` blocks until Ctrl-C.
    """
    parse_faults(faults)  # BadInput before anything starts
    if world is None:
        world = build_world(world_seed=world_seed, size=size, graph=graph)
    elif graph is not None or world_seed is not None:
        raise BadInput("give a world, a world seed or a graph file, not several")
    emu = Emulator(world, rate_limit=rate_limit, latency_ms=latency, faults=faults,
                   poison=tuple(poison), log_path=log, port=port, fault_seed=fault_seed)
    try:
        emu.start()
    except OSError as exc:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    return emu


@dataclass(frozen=True, slots=True)
class DumpReport:
    """Where a world went, with how many links and databases it holds."""

    path: Path
    links: int
    databases: int


def dump_world(
    path: str | Path, *, world_seed: int | None = None, size: int = DEFAULT_SIZE,
    graph: str | Path | None = None,
) -> DumpReport:
    """Write a world's records and links as JSON lines (`emulate --dump`), for `--graph` later."""
    world = build_world(world_seed=world_seed, size=size, graph=graph)
    try:
        links = world.dump(path)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None
    return DumpReport(Path(path), links, len(world.databases()))
