"""Shared pairings: how a generated world gives the same link from both of its ends.

A link name and its reverse (`gene_protein` / `protein_gene`) are two views of one relation.
Each relation is a configuration model over "stubs": record i of side A owns the stub range
`A[i]:A[i+1]`, record j of side B owns `B[j]:B[j+1]`, both ranges cut from one stub space
`[0, T)`, and a fixed bijection `s -> s * mult % T` joins an A stub to a B stub. Side A's links
are the B owners of its stubs' images, side B's links the A owners of its stubs' pre-images:
the same edge set from both ends, computed per record in O(degree · log n), never enumerating
the world. A partition (each protein has one gene) is the special case where every B record owns
exactly one stub and `mult` is 1, so a gene's proteins are a contiguous range of protein indices.

Degrees are heavy-tailed (Pareto, alpha 1.5) and drawn from a counter-based hash (splitmix64),
vectorised with numpy: a relation over 150k records costs a few milliseconds, the same in every
process for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
HUBS = 3  # the first records of a database are hubs (BRCA1 has ~1,000 gene_protein links)


def unit(key: int, n: int) -> np.ndarray:
    """n uniform floats in [0, 1), one per index, from a 64-bit key (splitmix64 per index)."""
    with np.errstate(over="ignore"):
        x = (np.arange(n, dtype=np.uint64) + np.uint64(key & (2**64 - 1))) * _GOLDEN
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def degrees(present_key: int, size_key: int, n: int, *, presence: float, mean: float, cap: int,
            n_target: int, hubs: bool = True, eligible: np.ndarray | None = None,
            hub_scale: tuple[int, int] = (50, 10)) -> np.ndarray:
    """Heavy-tailed stub counts for n records (0 where the link is absent); index 0 has >= 1."""
    u_size = unit(size_key, n)
    k = np.floor(mean / 3.0 * (1.0 - u_size) ** (-1 / 1.5)).astype(np.int64) + 1
    k = np.minimum(k, cap)
    k[unit(present_key, n) >= presence] = 0
    if eligible is not None:
        k[~eligible] = 0
    if hubs and cap > 1:
        for i in range(min(HUBS, n)):
            if eligible is None or eligible[i]:
                hub = min(cap, max(1, n_target // 3), int(mean * hub_scale[0 if i == 0 else 1]))
                k[i] = max(int(k[i]), hub)
    if n and (eligible is None or eligible[0]):
        k[0] = max(int(k[0]), 1)
    return k


def bounds(deg: np.ndarray, total: int) -> np.ndarray:
    """Stub ranges (n + 1 cut points over [0, total)): hubs keep their size (at most half of
    the space), the others share the rest in proportion to their degree."""
    n = len(deg)
    out = np.zeros(n + 1, dtype=np.int64)
    if n == 0 or total <= 0:
        return out
    fixed = deg[:HUBS].astype(np.int64).copy()
    if int(fixed.sum()) > total // 2:
        fixed = fixed * max(1, total // 2) // max(1, int(fixed.sum()))
        if deg[0] > 0:
            fixed[0] = max(int(fixed[0]), 1)
    rest = deg[HUBS:].astype(np.int64)
    used = int(fixed.sum())
    remaining = total - used
    tot = int(rest.sum())
    if tot == 0:  # nobody else takes part: the first record absorbs the rest
        fixed[0] += remaining
        used, remaining = total, 0
    out[1:len(fixed) + 1] = np.cumsum(fixed)
    if len(rest):
        out[len(fixed) + 1:] = used + np.cumsum(rest) * remaining // max(1, tot)
    return out


def _coprime_near(t: int, frac: float) -> int:
    """A multiplier coprime to t near frac * t (a golden-ratio stride spreads stubs evenly)."""
    if t <= 2:
        return 1
    m = max(1, int(t * frac)) % t or 1
    while math.gcd(m, t) != 1:
        m = m + 1 if m + 1 < t else 1
    return m


@dataclass(slots=True)
class Pairing:
    """One relation between side A (n_a records) and side B (n_b records) over shared stubs."""

    a: np.ndarray  # n_a + 1 cut points
    b: np.ndarray  # n_b + 1 cut points
    total: int
    mult: int
    inv: int

    @classmethod
    def build(cls, deg_a: np.ndarray, deg_b: np.ndarray, jitter: float) -> Pairing:
        """A configuration model: the larger side is thinned to the smaller side's stubs."""
        total = int(min(deg_a.sum(), deg_b.sum()))
        mult = _coprime_near(total, 0.5 + 0.118 + jitter)
        inv = pow(mult, -1, total) if total > 1 else 1
        return cls(bounds(deg_a, total), bounds(deg_b, total), total, mult, inv)

    @classmethod
    def partition(cls, deg_parent: np.ndarray, n_child: int) -> Pairing:
        """Each child belongs to one parent; a parent's children are a contiguous range."""
        return cls(bounds(deg_parent, n_child), np.arange(n_child + 1, dtype=np.int64),
                   n_child, 1, 1)

    def range_a(self, i: int) -> tuple[int, int]:
        return int(self.a[i]), int(self.a[i + 1])

    def owner_b(self, j: int) -> int | None:
        """The side-A record owning child stub j (partitions: the parent of child j)."""
        if not 0 <= j < self.total:
            return None
        i = int(np.searchsorted(self.a, j, side="right")) - 1
        return i if 0 <= i < len(self.a) - 1 else None

    def from_a(self, i: int) -> list[int]:
        """Side-B records linked to side-A record i, in stub order, without repeats."""
        return self._follow(self.a, self.b, i, self.mult)

    def from_b(self, j: int) -> list[int]:
        """Side-A records linked to side-B record j, in stub order, without repeats."""
        return self._follow(self.b, self.a, j, self.inv)

    def _follow(self, mine: np.ndarray, theirs: np.ndarray, i: int, mult: int) -> list[int]:
        if not 0 <= i < len(mine) - 1 or self.total <= 0:
            return []
        lo, hi = int(mine[i]), int(mine[i + 1])
        if hi <= lo:
            return []
        stubs = np.arange(lo, hi, dtype=np.int64)
        images = stubs * mult % self.total if mult != 1 else stubs
        owners = np.searchsorted(theirs, images, side="right") - 1
        owners = owners[(owners >= 0) & (owners < len(theirs) - 1)]
        return list(dict.fromkeys(int(o) for o in owners))
