"""Fault injection: what NCBI does to a crawler now and then, drawn reproducibly from a seed.

`--faults 429=0.2,5xx=0.1,drop=0.05,truncate=0.05,error=0.05,partial=0.05` gives each kind a
probability per request; one uniform draw per request picks at most one fault.
"""

from __future__ import annotations

import random
import threading

from ..errors import BadInput

# Order matters only for reproducibility: the cumulative table is built in this order.
FAULT_KINDS = ("429", "5xx", "500", "502", "503", "504", "drop", "truncate", "error",
               "partial")

# Texts NCBI puts in an <ERROR> of an HTTP 200 when a backend hiccups.
TRANSIENT_ERRORS = (
    "Search Backend failed: Couldn't resolve #exLinkSrv2, the address table is empty.",
    "Couldn't resolve #exLinkSrv2, the address table is empty.",
    "Search Backend failed: read error",
)


def parse_faults(spec: str | None) -> dict[str, float]:
    """`429=0.2,5xx=0.1,...` -> {kind: probability}; BadInput for unknown kinds or sums > 1."""
    out: dict[str, float] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in FAULT_KINDS:
            raise BadInput(f"invalid fault {part!r}: expected KIND=PROBABILITY with KIND one of "
                           f"{', '.join(FAULT_KINDS)}")
        try:
            p = float(value)
        except ValueError:
            raise BadInput(f"invalid fault probability {value!r} for {kind}") from None
        if not 0.0 <= p <= 1.0:
            raise BadInput(f"fault probability for {kind} must be within 0..1, got {p}")
        out[kind] = out.get(kind, 0.0) + p
    if sum(out.values()) > 1.0 + 1e-9:
        raise BadInput(f"fault probabilities add up to {sum(out.values()):.3f}, more than 1")
    return out


class FaultPlan:
    """Draws at most one fault per request from a seeded RNG (thread-safe)."""

    def __init__(self, spec: str | dict[str, float] | None = "", seed: int = 0) -> None:
        self.probs = parse_faults(spec) if not isinstance(spec, dict) else dict(spec)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return any(p > 0 for p in self.probs.values())

    def draw(self) -> tuple[str | None, float]:
        """(fault kind or None, a second uniform number for the fault's details)."""
        with self._lock:
            u, detail = self._rng.random(), self._rng.random()
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.probs.get(kind, 0.0)
            if u < acc:
                return kind, detail
        return None, detail
