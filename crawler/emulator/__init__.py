"""A local E-utilities (ELink, ESearch, EInfo, ESummary) for offline work, tests and benchmarks.

`World` holds records and links (generated from a seed, or loaded from JSON lines); `Emulator`
serves it over HTTP on 127.0.0.1 with NCBI's XML shapes, rate limit, faults and a request log.
"""

from .faults import FaultPlan, parse_faults
from .render import write_esummary_dtds
from .server import Emulator
from .world import LinkOut, World, WorldLink

__all__ = ["Emulator", "FaultPlan", "LinkOut", "World", "WorldLink", "parse_faults",
           "write_esummary_dtds"]
