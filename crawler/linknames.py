"""What the crawler knows about Entrez databases and link names, kept in one place.

- `KNOWN_DBS`: Entrez database names a seed, `--to` or `--query-db` may name (EInfo's list).
- `HUB_DBS`: databases whose records link to millions of others (taxonomy 9606): recorded, not
  expanded unless `--expand-hubs`.
- `SUBSETS`: link names that are strict subsets of another (`pubmed_pubmed_five` inside
  `pubmed_pubmed`): skipped when their parent is selected unless `--include-subsets`.
- computed neighbours (`pubmed_pubmed`, `protein_protein`, …): the links `neighbor_score` scores.
- `LinkFilter`: the user's choice of link names, target databases and exclusions.

Link names follow NCBI's `<dbfrom>_<dbto>[_<qualifier>]` spelling; the crawler only reads that
spelling when the user names link names (`--link`), since acheck then is skipped and the request
needs a `db`. Edges always take their target database from the answer's `DbTo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import BadInput
from .names import DB_ALIASES, check_linkname, normalize_db

KNOWN_DBS: frozenset[str] = frozenset(
    {
        "annotinfo", "assembly", "biocollections", "bioproject", "biosample", "biosystems",
        "blastdbinfo", "books", "cdd", "clinvar", "clone", "dbvar", "gap", "gapplus", "gds",
        "gencoll", "gene", "genome", "geoprofiles", "grasp", "gtr", "homologene", "ipg",
        "medgen", "mesh", "ncbisearch", "nlmcatalog", "nuccore", "nucest", "nucgss", "omim",
        "orgtrack", "pcassay", "pccompound", "pcsubstance", "pmc", "popset", "probe", "protein",
        "proteinclusters", "protfam", "pubmed", "seqannot", "snp", "sparcle", "sra",
        "structure", "taxonomy", "unigene", "unists",
    }
)

# Records of these databases link to a huge share of everything (a taxon to every sequence of the
# organism, a conserved domain to every protein holding it, a MeSH term or journal to every
# article): expanding one costs more than the rest of a crawl.
HUB_DBS: frozenset[str] = frozenset(
    {"taxonomy", "cdd", "mesh", "nlmcatalog", "genome", "bioproject", "proteinclusters"}
)

# Subset link name -> the link name it is a strict subset of.
SUBSETS: dict[str, str] = {
    "pubmed_pubmed_five": "pubmed_pubmed",
    "pubmed_pubmed_reviews": "pubmed_pubmed",
    "pubmed_pubmed_reviews_five": "pubmed_pubmed",
    "protein_protein_small_genome": "protein_protein",
    "nuccore_nuccore_comp": "nuccore_nuccore",
}

# Databases whose same-database neighbours are computed by similarity and carry scores.
_SCORED_DBS = frozenset({"pubmed", "protein", "nuccore", "structure"})


def check_db(name: str, what: str = "database") -> str:
    """A known Entrez database name (`nucleotide` folded into `nuccore`), else BadInput."""
    db = normalize_db(name)
    if db not in KNOWN_DBS:
        raise BadInput(f"unknown {what} {name!r} (known: {', '.join(sorted(KNOWN_DBS))})")
    return db


def split_linkname(linkname: str) -> tuple[str, str] | None:
    """(dbfrom, dbto) read from NCBI's spelling, or None when it does not name two databases."""
    parts = linkname.split("_")
    if len(parts) < 2:
        return None
    src, dst = (DB_ALIASES.get(p, p) for p in parts[:2])
    if src in KNOWN_DBS and dst in KNOWN_DBS:
        return src, dst
    return None


def is_scored(linkname: str) -> bool:
    """Computed neighbours (`pubmed_pubmed`, `protein_protein`, their subsets) have scores."""
    pair = split_linkname(linkname)
    return pair is not None and pair[0] == pair[1] and pair[0] in _SCORED_DBS


def is_hub(db: str) -> bool:
    return db in HUB_DBS


@dataclass(frozen=True, slots=True)
class LinkFilter:
    """Which links a crawl follows. Empty `links` means "whatever acheck lists"."""

    links: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    to_dbs: tuple[str, ...] = ()
    include_subsets: bool = False

    @classmethod
    def build(
        cls,
        links: Iterable[str] = (),
        exclude: Iterable[str] = (),
        to_dbs: Iterable[str] = (),
        include_subsets: bool = False,
    ) -> LinkFilter:
        """Validated and normalised (sorted, deduplicated) so stored settings compare equal."""
        names = sorted({check_linkname(n.strip()) for n in links})
        for n in names:
            if split_linkname(n) is None:
                raise BadInput(
                    f"cannot tell the databases of link name {n!r}: expected "
                    "<dbfrom>_<dbto>[_qualifier] with known database names (see `entrez-graph "
                    "links DB ID` for a record's link names)"
                )
        excluded = sorted({check_linkname(n.strip()) for n in exclude})
        dbs = sorted({check_db(d, "database in --db") for d in to_dbs})
        return cls(tuple(names), tuple(excluded), tuple(dbs), bool(include_subsets))

    @property
    def named(self) -> bool:
        """True when the user named the link names: acheck adds nothing then."""
        return bool(self.links)

    def _keeps(self, linkname: str, dbto: str) -> bool:
        if linkname in self.exclude:
            return False
        return not (self.to_dbs and normalize_db(dbto) not in self.to_dbs)

    def _drop_subsets(self, chosen: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.include_subsets:
            return list(chosen)
        names = {ln for ln, _ in chosen}
        return [(ln, to) for ln, to in chosen if SUBSETS.get(ln) not in names]

    def named_for(self, dbfrom: str) -> list[tuple[str, str]]:
        """(linkname, dbto) pairs of the named link names that start at `dbfrom`."""
        chosen = []
        for ln in self.links:
            pair = split_linkname(ln)
            if pair and pair[0] == dbfrom and self._keeps(ln, pair[1]):
                chosen.append((ln, pair[1]))
        return self._drop_subsets(chosen)

    def select(self, offered: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of the (linkname, dbto) pairs acheck listed for one record, those to fetch."""
        seen: dict[str, str] = {}
        for ln, dbto in offered:
            if not ln or not dbto:
                continue
            try:
                check_linkname(ln)
                dbto = normalize_db(dbto)
            except BadInput:
                continue  # cannot become an edge type; never reaches Cypher
            if self.links and ln not in self.links:
                continue
            if self._keeps(ln, dbto):
                seen.setdefault(ln, dbto)
        return self._drop_subsets(sorted(seen.items()))

    def as_settings(self) -> dict:
        return {
            "links": list(self.links),
            "exclude": list(self.exclude),
            "to": list(self.to_dbs),
            "include_subsets": self.include_subsets,
        }
