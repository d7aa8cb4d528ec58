"""`emulate`: a local E-utilities built from a generated or loaded world, started for you.

The Python side of `entrez-graph emulate`. `emulate()` returns a running `Emulator` (stop it,
or use it as a context manager); `dump_world()` writes a world as JSON lines instead of serving
it. Both check their arguments before building anything, so bad input is one `BadInput`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from ..names import check_uid, shorten
from .faults import parse_faults
from .server import Emulator
from .world import World

DEFAULT_SIZE = 2000
DEFAULT_WORLD_SEED = 1
# Memory a generated world's link tables take per record, measured (~45 bytes at 10^6 records,
# `benchmarks`-style: resource.getrusage after one request per database), with a margin.
BYTES_PER_RECORD = 64

log = logging.getLogger(__name__)


def _available_memory() -> int | None:
    """Bytes this machine can still give (MemAvailable), or None where that is unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n < 1e12 else f"{n / 1e12:,.0f} TB"


def check_size(size: int) -> None:
    """Refuse a --size whose world would not fit in this machine's memory, before building."""
    if size < 1:
        raise BadInput(f"--size must be positive, got {size}")
    available = _available_memory()
    need = size * BYTES_PER_RECORD
    if available is not None and need > available:
        raise BadInput(
            f"--size {shorten(size)} needs about {_gb(need)} of memory, more than the "
            f"{_gb(available)} available here (at most about --size "
            f"{available // BYTES_PER_RECORD:,})"
        )


def check_poison(poison: Iterable[str]) -> tuple[str, ...]:
    """Poison IDs are UIDs as requests carry them: anything else could never match."""
    out = []
    for p in poison:
        try:
            out.append(check_uid(str(p).strip()))
        except BadInput:
            raise BadInput(
                f"invalid --poison ID {shorten(str(p).strip())!r}: expected a positive whole "
                "number (a UID, comma-separated for several)"
            ) from None
    return tuple(out)


def check_version(version: int) -> int:
    """A world version is a whole number >= 0 (0: the world as generated or loaded)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise BadInput(f"--world-version must be a whole number >= 0, got {version!r}")
    return version


def build_world(
    *, world_seed: int | None = None, size: int = DEFAULT_SIZE, graph: str | Path | None = None,
    world_version: int = 0,
) -> World:
    """A world generated from `world_seed` (default 1) with `size` records, or loaded from the
    JSON-lines file `graph` (the dump format); not both. `world_version` N serves it after N
    steps of change (links dropped and added, records replaced or withdrawn; versions.py)."""
    check_version(world_version)
    if graph is not None and world_seed is not None:
        raise BadInput("give either --world SEED or --graph FILE, not both")
    if graph is not None:
        if not Path(graph).is_file():
            raise BadInput(f"graph file {str(graph)!r} does not exist")
        world = World.load(graph, version=world_version)
        for warning in world.load_warnings(str(graph)):
            log.warning("Warning: %s", warning)
        return world
    check_size(size)
    return World.generate(seed=DEFAULT_WORLD_SEED if world_seed is None else world_seed, size=size,
                          version=world_version)


def emulate(
    *,
    world: World | None = None,
    world_seed: int | None = None,
    size: int = DEFAULT_SIZE,
    graph: str | Path | None = None,
    world_version: int = 0,
    port: int = 0,
    rate_limit: int = 0,
    latency: float = 0.0,
    faults: str = "",
    fault_seed: int = 0,
    poison: Iterable[str] = (),
    log: str | Path | None = None,
) -> Emulator:
    """Start a local E-utilities on 127.0.0.1 and return it running (`emu.url`, `emu.port`).

    The world is `world`, or built by `build_world(world_seed=, size=, graph=, world_version=)`
    (a given `world` is served at `world_version` when that is not 0). `port` 0 picks a
    free port; `rate_limit` answers HTTP 429 above that many requests per second (0: off);
    `latency` is milliseconds before each answer; `faults` is a spec such as `429=0.2,5xx=0.1`;
    `poison` IDs make any request holding them fail with HTTP 400; `log` appends every request
    as a JSON line. Stop it with `emu.stop()`, or use `with emulate(...) as emu:`;
    `emu.serve_forever()` blocks until Ctrl-C.
    """
    parse_faults(faults)  # BadInput before anything starts
    poison = check_poison(poison)
    if world is None:
        world = build_world(world_seed=world_seed, size=size, graph=graph,
                            world_version=world_version)
    elif graph is not None or world_seed is not None:
        raise BadInput("give a world, a world seed or a graph file, not several")
    elif check_version(world_version) and world_version != world.version:
        world = world.at_version(world_version)
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
    graph: str | Path | None = None, world_version: int = 0,
) -> DumpReport:
    """Write a world's records and links as JSON lines (`emulate --dump`), for `--graph` later
    (at `world_version`: its links then, and each retired record's `status`/`replaced_by`)."""
    world = build_world(world_seed=world_seed, size=size, graph=graph,
                        world_version=world_version)
    try:
        links = world.dump(path)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None
    return DumpReport(Path(path), links, len(world.databases()))
