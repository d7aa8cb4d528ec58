"""World versions: the emulator's world as NCBI changes it between two crawls.

Version 0 is the world as generated or loaded. Version N applies steps 1..N; each step is a pure
function of (world seed, step), so a version is the same in every process, and nothing is
materialised: the links of one record at version N are computed from the version-0 links of that
record and of N other records, with no enumeration of the world.

What a step does:
- **drops** every link with probability `drop` (default 5%), decided on the link's canonical key
  (the link name of the pair that sorts first, its ends in that name's direction), so a link and
  its reverse (`gene_pubmed` / `pubmed_gene`, `pubmed_pubmed` both ways) go together, and the
  subsets of a link name (`pubmed_pubmed_five`, `gene_protein_refseq`) lose what their parent
  loses. A record's organism links (taxonomy) and self-links never change.
- **adds** new links to the link names that grow in NCBI (new citations, similar articles,
  sequences' publications, domains, samples; `GROWING`): each version-0 link of those names
  spawns, with probability `add` (default 5%), a new link from the same source to another record
  of the same target database, `g(target)` for a bijection `g` of that database's records
  drawn per (step, link name). The bijection is what keeps reverse names consistent lazily: the
  new reverse links of record x are found from `g^-1(x)`'s links. New scored links
  (`pubmed_pubmed`) get a score that is the same from both ends.
- **retires** about `retire` (default 1%) of the records still current: in the databases where
  NCBI reports a successor (gene, nuccore, protein, snp, cdd) half are replaced by another
  current record of the same database, the others (and every retired record elsewhere) are
  withdrawn. A retired record has no links left, from it or to it, and no LinkOut entries; its
  ESummary says so as NCBI does (see `World.summary`).

The well-known records (gene 672 and its chain, ...) are never retired, and links between two of
them are never dropped, so the documented chain stays whole in every version.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .world import World, WorldLink

DEFAULT_DROP = 0.05
DEFAULT_ADD = 0.05
DEFAULT_RETIRE = 0.01

# Canonical link names (the one of a pair that sorts first) whose links grow between versions.
GROWING = frozenset({
    "gene_pubmed", "nuccore_pubmed", "protein_pubmed", "cdd_protein", "biosample_nuccore",
    "nuccore_sra", "clinvar_snp", "pubmed_pubmed", "structure_pubmed", "snp_pubmed",
    "clinvar_pubmed", "cdd_pubmed", "pmc_pmc_citedby",
})
# Databases whose ESummary names a successor of a replaced record (summaries.py `_status`).
REPLACEABLE = frozenset({"gene", "nuccore", "protein", "snp", "cdd"})
# Databases whose withdrawn records still have a document summary, with a status in it.
WITHDRAWN_KEEP_DOCSUM = frozenset({"gene", "nuccore", "protein"})
NEVER_RETIRED = frozenset({"taxonomy"})

_TWO64 = float(2**64)


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-step probabilities: a link dropped, a growing link spawning one, a record retired."""

    drop: float = DEFAULT_DROP
    add: float = DEFAULT_ADD
    retire: float = DEFAULT_RETIRE

    def check(self) -> Rates:
        from ..errors import BadInput

        for name in ("drop", "add", "retire"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInput(f"world change rate {name} must be between 0 and 1, got {value}")
        return self


class Retired(NamedTuple):
    """A record no longer current since `step`: `replaced` (by `by`, a UID) or `withdrawn`."""

    step: int
    kind: str
    by: str | None = None


class _Shift(NamedTuple):
    n: int
    mult: int
    inv: int
    add: int

    def fwd(self, k: int) -> int:
        return (k * self.mult + self.add) % self.n

    def back(self, k: int) -> int:
        return (k - self.add) * self.inv % self.n


class Versions:
    """The changes of one world: statuses and the links of a record at any version."""

    def __init__(self, world: World, rates: Rates, *, hash_: Callable[..., int],
                 reverse: dict[str, str], subsets: dict[str, str],
                 scored: frozenset[str]) -> None:
        self.w = world
        self.rates = rates
        self._h = hash_
        self._reverse = reverse
        self._subsets = subsets
        self._scored = scored
        self._seed = world.seed if world.seed is not None else "loaded"
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, str, str], list[WorldLink]] = OrderedDict()
        self._cache_max = 20000
        self._shifts: dict[tuple[int, str, str], _Shift | None] = {}
        self._prefixes: dict[tuple[str, int], Any] = {}
        self._retired: dict[tuple[str, str], tuple[int | None, int]] = {}

    # --- hashing ------------------------------------------------------------------------------

    def _u(self, purpose: str, step: int, *parts: object) -> float:
        """A uniform draw in [0, 1) per (seed, purpose, step, parts): blake2b, as `_h`, from a
        prefix hashed once per (purpose, step) (the draws are most of a version's cost)."""
        prefix = self._prefixes.get((purpose, step))
        if prefix is None:
            prefix = hashlib.blake2b(f"{self._seed}|{purpose}|{step}|".encode(), digest_size=8)
            self._prefixes[(purpose, step)] = prefix
        h = prefix.copy()
        h.update("|".join(map(str, parts)).encode())
        return int.from_bytes(h.digest(), "big") / _TWO64

    # --- records ------------------------------------------------------------------------------

    def retired_step(self, db: str, uid: str, upto: int) -> int | None:
        """The first step <= upto that retires the record, or None (still current)."""
        if self.rates.retire <= 0 or db in NEVER_RETIRED or self.w._protected(db, uid):
            return None
        hit = self._retired.get((db, uid))
        if hit is None or (hit[1] < upto and hit[0] is None):
            done = 0 if hit is None else hit[1]  # steps already drawn: none retired it
            first = next((step for step in range(done + 1, upto + 1)
                          if self._u("retire", step, db, uid) < self.rates.retire), None)
            if len(self._retired) > 500_000:
                self._retired.clear()
            self._retired[(db, uid)] = hit = (first, upto)
        first = hit[0]
        return first if first is not None and first <= upto else None

    def status(self, db: str, uid: str, version: int) -> Retired | None:
        step = self.retired_step(db, uid, version)
        if step is None:
            return None
        if db in REPLACEABLE and self._h(self._seed, "how", step, db, uid) % 2 == 0:
            by = self._successor(db, uid, step)
            if by is not None:
                return Retired(step, "replaced", by)
        return Retired(step, "withdrawn")

    def _successor(self, db: str, uid: str, step: int) -> str | None:
        """Another record of `db` still current at `step` (deterministic probes)."""
        n = self.w._db_size(db)
        if n < 2:
            return None
        for probe in range(32):
            k = self._h(self._seed, "successor", step, db, uid, probe) % n
            cand = self.w._uid_at(db, k)
            if cand != uid and self.retired_step(db, cand, step) is None:
                return cand
        return None

    def alive(self, db: str, uid: str, version: int) -> bool:
        return self.retired_step(db, uid, version) is None

    # --- links --------------------------------------------------------------------------------

    def canonical(self, name: str, a: str, b: str) -> tuple[str, str, str]:
        """The key one link and its reverse share: (name, from, to) in the first name's sense."""
        rev = self._reverse.get(name)
        if rev is None:
            return name, a, b
        if rev == name:
            return (name, a, b) if int(a) <= int(b) else (name, b, a)
        return (name, a, b) if name < rev else (rev, b, a)

    def _stable(self, link: WorldLink) -> bool:
        return (link.dbto == "taxonomy" or link.dbfrom == "taxonomy"
                or (link.dbfrom == link.dbto and link.uid == link.target)
                or (self.w._protected(link.dbfrom, link.uid)
                    and self.w._protected(link.dbto, link.target)))

    def survives(self, link: WorldLink, origin: int, version: int) -> bool:
        """No step in (origin, version] drops the link (decided on its canonical key)."""
        if self.rates.drop <= 0 or self._stable(link):
            return True
        key = self.canonical(link.linkname, link.uid, link.target)
        return all(self._u("drop", step, *key) >= self.rates.drop
                   for step in range(origin + 1, version + 1))

    def _spawns(self, step: int, key: tuple[str, str, str]) -> bool:
        return self._u("add", step, *key) < self.rates.add

    def _shift(self, step: int, name: str, db: str) -> _Shift | None:
        """The bijection of `db`'s records that new links of `name` at `step` move targets by."""
        k = (step, name, db)
        with self._lock:
            if k in self._shifts:
                return self._shifts[k]
        n = self.w._db_size(db)
        shift = None
        if n >= 2:
            mult = 1 + self._h(self._seed, "mult", step, name, db) % (n - 1)
            while gcd(mult, n) != 1:
                mult = mult % (n - 1) + 1
            shift = _Shift(n, mult, pow(mult, -1, n),
                           self._h(self._seed, "offset", step, name, db) % n)
        with self._lock:
            self._shifts[k] = shift
        return shift

    def _score(self, key: tuple[str, str, str]) -> int:
        return 1_000_000 + self._h(self._seed, "vscore", *key) % 59_000_000

    def _moved(self, step: int, name: str, db: str, uid: str) -> str | None:
        shift = self._shift(step, name, db)
        k = self.w._pos_of(db, uid)
        if shift is None or k is None:
            return None
        return self.w._uid_at(db, shift.fwd(k))

    def _unmoved(self, step: int, name: str, db: str, uid: str) -> str | None:
        shift = self._shift(step, name, db)
        k = self.w._pos_of(db, uid)
        if shift is None or k is None:
            return None
        return self.w._uid_at(db, shift.back(k))

    def additions(self, step: int, db: str, uid: str) -> list[tuple[str, str, str, int | None]]:
        """(link name, dbto, target, score) of the links record (db, uid) gains at `step`."""
        if self.rates.add <= 0:
            return []
        base = self.w._base_links(db, uid)
        out: list[tuple[str, str, str, int | None]] = []
        by_name: dict[str, list[WorldLink]] = {}
        for lk in base:
            by_name.setdefault(lk.linkname, []).append(lk)
        for name, dbto in self.w._names_of(db):
            rev = self._reverse.get(name)
            canon = name if rev is None or name <= rev else rev
            if canon not in GROWING:
                continue
            scored = name in self._scored
            if canon == name:  # this record keeps its end, its targets move
                for lk in by_name.get(name, ()):
                    if lk.target == uid:
                        continue
                    key = self.canonical(name, uid, lk.target)
                    if rev == name and key[1] != uid:
                        continue  # symmetric: the lower UID of the pair keeps its end
                    if not self._spawns(step, key):
                        continue
                    moved = self._moved(step, canon, dbto, lk.target)
                    if moved is None or moved == uid:
                        continue
                    new_key = self.canonical(name, uid, moved)
                    out.append((name, dbto, moved, self._score(new_key) if scored else None))
            if rev == name or canon != name:
                # this record is where a moved end lands: from g^-1(uid)'s pairs
                origin = self._unmoved(step, canon, db, uid)
                if origin is None:
                    continue
                for lk in self.w._base_links_named(db, origin, name):
                    if lk.target == origin:
                        continue
                    key = self.canonical(name, origin, lk.target)
                    if rev == name and key[2] != origin:
                        continue  # symmetric: only the higher end of the pair moves
                    if lk.target == uid or not self._spawns(step, key):
                        continue
                    new_key = self.canonical(name, uid, lk.target)
                    out.append((name, lk.dbto, lk.target,
                                self._score(new_key) if scored else None))
        return out

    def links(self, version: int, db: str, uid: str) -> list[WorldLink]:
        """Every link of (db, uid) at `version`, grouped by link name as at version 0."""
        key = (version, db, uid)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return list(hit)
        links = self._compute(version, db, uid)
        with self._lock:
            self._cache[key] = links
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return list(links)

    def _compute(self, version: int, db: str, uid: str) -> list[WorldLink]:
        from .world import WorldLink

        if not self.alive(db, uid, version):
            return []
        base = self.w._base_links(db, uid)
        groups: dict[str, dict[str, WorldLink]] = {}
        grown: set[str] = set()
        for lk in base:
            if lk.linkname in self._subsets:
                continue
            if self.survives(lk, 0, version) and self.alive(lk.dbto, lk.target, version):
                groups.setdefault(lk.linkname, {}).setdefault(lk.target, lk)
        for step in range(1, version + 1):
            for name, dbto, target, score in self.additions(step, db, uid):
                lk = WorldLink(db, uid, name, dbto, target, score)
                group = groups.setdefault(name, {})
                if target in group or not self.survives(lk, step, version):
                    continue
                if self.alive(dbto, target, version):
                    group[target] = lk
                    grown.add(name)
        for lk in base:  # subsets keep what their parent keeps
            parent = self._subsets.get(lk.linkname)
            if parent is not None and lk.target in groups.get(parent, {}):
                groups.setdefault(lk.linkname, {}).setdefault(lk.target, lk)
        order = {name: n for n, (name, _) in enumerate(self.w._names_of(db))}
        first_seen: dict[str, int] = {}
        for n, lk in enumerate(base):
            first_seen.setdefault(lk.linkname, n)
        out: list[WorldLink] = []
        if self.w.generated:  # version 0's order of link names (the catalog's)
            def rank(nm: str) -> tuple[int, int, str]:
                return order.get(nm, 10_000), first_seen.get(nm, 10_000), nm
        else:  # a loaded record's own order, new link names last
            def rank(nm: str) -> tuple[int, int, str]:
                return first_seen.get(nm, 10_000), order.get(nm, 10_000), nm
        for name in sorted(groups, key=rank):
            items = list(groups[name].values())
            if name in grown:  # NCBI's order: by score, else newest (highest UID) first
                if any(lk.score is not None for lk in items):
                    items.sort(key=lambda lk: -(lk.score or 0))
                else:
                    items.sort(key=lambda lk: -int(lk.target))
            out.extend(items)
        return out
