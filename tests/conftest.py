"""Shared fixtures: a small generated world and the local E-utilities emulator serving it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from crawler.emulator import Emulator, World


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: heavier test, still run by default")


@pytest.fixture(scope="session")
def world() -> World:
    """A small deterministic world (~600 records) holding every design link name."""
    return World.generate(seed=1, size=600)


@pytest.fixture
def emulator(world: World) -> Iterator[Emulator]:
    """The emulator on 127.0.0.1 (free port, rate limit off, no faults), stopped afterwards."""
    with Emulator(world, rate_limit=0) as emu:
        yield emu


@pytest.fixture
def emulator_at(world: World) -> Iterator[Callable[..., Emulator]]:
    """Start emulators over `world` at a given version: `emu = emulator_at(1)` (a new free
    port each time; `emu.stop()` to stop one early); all are stopped afterwards.
    `emulator_at(1, world=other)` serves another world."""
    started: list[Emulator] = []

    def start(version: int = 0, *, world: World = world, **kw: object) -> Emulator:
        emu = Emulator(world.at_version(version) if version != world.version else world,
                       rate_limit=0, **kw)  # type: ignore[arg-type]
        started.append(emu.start())
        return emu

    yield start
    for emu in started:
        emu.stop()
