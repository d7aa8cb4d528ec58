"""Shared fixtures: a small generated world and the local E-utilities emulator serving it."""

from __future__ import annotations

from collections.abc import Iterator

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
