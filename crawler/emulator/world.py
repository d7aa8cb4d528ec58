"""The emulator's world: Entrez records and the ELink links between them.

A generated world is never materialised: the links of a record are computed on demand from the
seed, so a world of 500k records and ~10M links costs almost no memory, and `links_from` gives
the same answer in every call, every process and `dump`. Record UIDs sit in known ranges per
database (a few well-known UIDs first: gene 672, taxonomy 9606, ...), so enumerating a database
is a loop over indices.

The world is coherent where a user looks. Every protein, RNA, variant and ClinVar record belongs
to one gene (a gene's proteins are a contiguous range of protein indices), so its name, accession
kind (NM_/NP_ for the gene's RefSeq records, XM_/XP_ models, GenBank otherwise) and organism come
from that gene; structures are named after the proteins they hold; articles are about the genes
they are linked to. A link name and its reverse (`gene_protein`/`protein_gene`,
`pubmed_pubmed` both ways with one score per pair) are two views of one shared pairing
(`pairing.py`), so both ends give the same edge without enumerating the world. Links NCBI keeps
no reverse of here (`structure_pubmed`, `pmc_pmc_citedby`, ...) are drawn per record.

A loaded world (`World.load`, the `--graph` file) holds its links explicitly.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from math import gcd
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import BadInput
from ..linknames import split_linkname
from ..names import DB_ALIASES, IDENTIFIER, shorten
from .pairing import Pairing, degrees
from .versions import REPLACEABLE, WITHDRAWN_KEEP_DOCSUM, Rates, Retired, Versions


class WorldLink(NamedTuple):
    """One ELink link: `uid` in `dbfrom` links to `target` in `dbto` under `linkname`."""

    dbfrom: str
    uid: str
    linkname: str
    dbto: str
    target: str
    score: int | None = None


@dataclass(frozen=True, slots=True)
class LinkOut:
    """A LinkOut (ExternalLink) entry of a record: what llinks/prlinks/acheck report."""

    url: str
    provider: str
    abbr: str
    provider_id: str
    category: str
    attribute: str
    library: bool = False
    linkname: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url, "provider": self.provider, "abbr": self.abbr,
            "provider_id": self.provider_id, "category": self.category,
            "attribute": self.attribute, "library": self.library, "linkname": self.linkname,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LinkOut:
        return cls(
            url=str(d["url"]), provider=str(d.get("provider", "")), abbr=str(d.get("abbr", "")),
            provider_id=str(d.get("provider_id", "0")), category=str(d.get("category", "")),
            attribute=str(d.get("attribute", "")), library=bool(d.get("library", False)),
            linkname=d.get("linkname"),
        )


# --- link-name knowledge (menu texts as NCBI's acheck/einfo give them) -------------------------

DB_TITLES: dict[str, tuple[str, str]] = {
    # db: (MenuName / HtmlTag word, einfo Description)
    "gene": ("Gene", "Gene database"),
    "protein": ("Protein", "Protein sequence record"),
    "nuccore": ("Nucleotide", "Core Nucleotide db"),
    "pubmed": ("PubMed", "PubMed bibliographic record"),
    "structure": ("Structure", "Three-dimensional molecular model"),
    "taxonomy": ("Taxonomy", "Taxonomy db"),
    "snp": ("SNP", "Single Nucleotide Polymorphisms"),
    "clinvar": ("ClinVar", "ClinVar Database"),
    "homologene": ("HomoloGene", "HomoloGene Database"),
    "cdd": ("Conserved Domains", "Conserved Domain Database"),
    "biosample": ("BioSample", "BioSample Database"),
    "sra": ("SRA", "SRA Database"),
    "pmc": ("PMC", "PubMed Central"),
}


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """How a generated world draws one link name: presence probability and heavy-tailed size."""

    linkname: str
    dbto: str
    presence: float
    mean: float
    cap: int = 1000
    scored: bool = False
    subset_of: str | None = None
    menu: str | None = None
    priority: int = 128


def _spec(name: str, dbto: str, presence: float, mean: float, **kw: Any) -> LinkSpec:
    return LinkSpec(name, dbto, presence, mean, **kw)


# Every link name of design.md's tables, their reverse links, and taxonomy/hub links. Where a
# link name has a reverse, the two ends' presence × mean × database share roughly balance: the
# larger end of a shared pairing is thinned to the smaller one's stubs.
CATALOG: dict[str, tuple[LinkSpec, ...]] = {
    "gene": (
        _spec("gene_protein", "protein", 0.9, 6, cap=1200),
        _spec("gene_protein_refseq", "protein", 0.8, 3, menu="Protein (RefSeq) Links"),
        _spec("gene_nuccore", "nuccore", 0.9, 5),
        _spec("gene_nuccore_refseqrna", "nuccore", 0.7, 2, menu="RefSeq RNAs"),
        _spec("gene_pubmed", "pubmed", 0.8, 8, cap=2000),
        _spec("gene_homologene", "homologene", 0.5, 1, cap=1),
        _spec("gene_snp", "snp", 0.6, 3),
        _spec("gene_clinvar", "clinvar", 0.3, 2),
        _spec("gene_taxonomy", "taxonomy", 1.0, 1, cap=1),
    ),
    "nuccore": (
        _spec("nuccore_protein", "protein", 0.8, 2),
        _spec("nuccore_gene", "gene", 0.6, 1, cap=3),
        _spec("nuccore_pubmed", "pubmed", 0.5, 2),
        _spec("nuccore_taxonomy", "taxonomy", 1.0, 1, cap=1),
        _spec("nuccore_biosample", "biosample", 0.3, 1, cap=2),
        _spec("nuccore_sra", "sra", 0.2, 2),
    ),
    "protein": (
        _spec("protein_nuccore", "nuccore", 0.9, 1, cap=3),
        _spec("protein_gene", "gene", 0.6, 1, cap=2),
        _spec("protein_pubmed", "pubmed", 0.4, 2),
        _spec("protein_structure", "structure", 0.15, 2),
        _spec("protein_cdd", "cdd", 0.6, 2),
        _spec("protein_protein", "protein", 0.7, 20, cap=500, scored=True,
              menu="Identical Proteins", priority=1),
        _spec("protein_taxonomy", "taxonomy", 1.0, 1, cap=1),
    ),
    "pubmed": (
        _spec("pubmed_pubmed", "pubmed", 0.95, 40, cap=500, scored=True,
              menu="Similar articles", priority=1),
        _spec("pubmed_pubmed_five", "pubmed", 0.95, 5, scored=True, subset_of="pubmed_pubmed",
              menu="Five most related Articles", priority=1),
        _spec("pubmed_pubmed_reviews", "pubmed", 0.95, 5, scored=True,
              subset_of="pubmed_pubmed", menu="Related reviews", priority=1),
        _spec("pubmed_gene", "gene", 0.5, 3),
        _spec("pubmed_protein", "protein", 0.25, 3, priority=140),
        _spec("pubmed_nuccore", "nuccore", 0.25, 3),
        _spec("pubmed_pmc", "pmc", 0.3, 1, cap=1, menu="PMC Links"),
    ),
    "structure": (
        _spec("structure_protein", "protein", 1.0, 2, cap=20),
        _spec("structure_pubmed", "pubmed", 0.7, 1, cap=2),
        _spec("structure_taxonomy", "taxonomy", 1.0, 1, cap=1),
    ),
    "taxonomy": (
        _spec("taxonomy_gene", "gene", 1.0, 30, cap=3000),
        _spec("taxonomy_nuccore", "nuccore", 1.0, 30, cap=3000),
        _spec("taxonomy_protein", "protein", 1.0, 30, cap=3000),
        _spec("taxonomy_structure", "structure", 0.8, 3, cap=3000),
    ),
    "snp": (
        _spec("snp_gene", "gene", 0.9, 1, cap=2),
        _spec("snp_clinvar", "clinvar", 0.2, 1, cap=3),
        _spec("snp_pubmed", "pubmed", 0.2, 2),
    ),
    "clinvar": (
        _spec("clinvar_gene", "gene", 1.0, 1, cap=2),
        _spec("clinvar_snp", "snp", 0.6, 1, cap=2),
        _spec("clinvar_pubmed", "pubmed", 0.5, 3),
    ),
    "homologene": (
        _spec("homologene_gene", "gene", 1.0, 6, cap=40),
        _spec("homologene_protein", "protein", 1.0, 6, cap=40),
    ),
    "cdd": (
        _spec("cdd_protein", "protein", 1.0, 40, cap=1500),
        _spec("cdd_pubmed", "pubmed", 0.5, 2),
    ),
    "biosample": (
        _spec("biosample_nuccore", "nuccore", 0.8, 5),
        _spec("biosample_sra", "sra", 0.6, 1, cap=3),
    ),
    "sra": (
        _spec("sra_nuccore", "nuccore", 0.9, 6, cap=20),
        _spec("sra_biosample", "biosample", 0.9, 1, cap=1),
    ),
    "pmc": (
        _spec("pmc_pubmed", "pubmed", 1.0, 1, cap=1),
        _spec("pmc_pmc_citedby", "pmc", 0.5, 3, menu="Cited by other articles in PMC"),
    ),
}

# Share of a world's records per database, and where each database's generated UIDs start.
_SHARE = {
    "pubmed": 0.28, "protein": 0.24, "nuccore": 0.19, "gene": 0.08, "snp": 0.05,
    "structure": 0.03, "clinvar": 0.025, "pmc": 0.025, "taxonomy": 0.02, "biosample": 0.02,
    "sra": 0.015, "homologene": 0.01, "cdd": 0.01,
}
_MIN_COUNT = 12

# Well-known records first (index 0, 1, ...), then a contiguous generated range.
_SPECIALS: dict[str, tuple[int, ...]] = {
    "gene": (672, 7157, 675, 1956, 7124),       # BRCA1, TP53, BRCA2, EGFR, TNF
    "protein": (6552302,),                      # NP_009225 (BRCA1)
    "nuccore": (237757283,),                    # NM_007294 (BRCA1 mRNA)
    "structure": (17850,),                      # 1JM7 (BRCA1/BARD1 RING)
    "taxonomy": (9606, 10090, 10116, 7955, 7227, 6239, 559292, 562, 9913, 9031, 3702, 9598,
                 9544, 9615, 8364),
    "snp": (80357906,),
    "pmc": (1234567,),
    "pubmed": (9298984,),
    "homologene": (5276,),
    "clinvar": (17661,),
    "cdd": (238093,),
}
_BASE = {
    "gene": 100001, "protein": 1000000001, "nuccore": 2000000001, "pubmed": 30000001,
    "structure": 200001, "taxonomy": 1000001, "snp": 1000000001, "clinvar": 500001,
    "homologene": 100001, "cdd": 400001, "biosample": 30000001, "sra": 20000001,
    "pmc": 8000001,
}

_ORGANISMS = (
    "Homo sapiens", "Mus musculus", "Rattus norvegicus", "Danio rerio",
    "Drosophila melanogaster", "Caenorhabditis elegans", "Saccharomyces cerevisiae S288C",
    "Escherichia coli", "Bos taurus", "Gallus gallus", "Arabidopsis thaliana",
    "Pan troglodytes", "Macaca mulatta", "Canis lupus familiaris", "Xenopus tropicalis",
)
_COMMON_NAMES = ("human", "house mouse", "Norway rat", "zebrafish", "fruit fly", "",
                 "baker's yeast", "", "cattle", "chicken", "thale cress", "chimpanzee",
                 "Rhesus monkey", "dog", "tropical clawed frog")
_ORG_ALIASES = {
    "human": 9606, "mouse": 10090, "rat": 10116, "zebrafish": 7955, "fruit fly": 7227,
    "yeast": 559292, "e. coli": 562, "cattle": 9913, "chicken": 9031, "dog": 9615,
}
_GENERA = ("Streptomyces", "Bacillus", "Pseudomonas", "Lactobacillus", "Mycobacterium",
           "Clostridium", "Aspergillus", "Candida", "Vibrio", "Bacteroides", "Salmonella",
           "Arabidopsis", "Oryza", "Plasmodium", "Trypanosoma", "Leishmania")
_GENE_FAMILIES = ("ZNF", "SLC", "KRT", "OR", "TMEM", "CCDC", "FAM", "ANKRD", "RPL", "KLHL",
                  "ABCA", "CDH", "COL", "DNAJ", "HOX", "IL", "KIF", "MYO", "NDUF", "PCDH")
_GENE_WORDS = ("zinc finger protein", "solute carrier family", "keratin", "olfactory receptor",
               "transmembrane protein", "coiled-coil domain containing",
               "family with sequence similarity", "ankyrin repeat domain",
               "ribosomal protein L", "kelch like family member",
               "ATP binding cassette subfamily A member", "cadherin", "collagen type",
               "DnaJ heat shock protein family member", "homeobox", "interleukin",
               "kinesin family member", "myosin", "NADH:ubiquinone oxidoreductase subunit",
               "protocadherin")
_SPECIAL_GENES = {
    672: ("BRCA1", "BRCA1 DNA repair associated", "17q21.31"),
    7157: ("TP53", "tumor protein p53", "17p13.1"),
    675: ("BRCA2", "BRCA2 DNA repair associated", "13q13.1"),
    1956: ("EGFR", "epidermal growth factor receptor", "7p11.2"),
    7124: ("TNF", "tumor necrosis factor", "6p21.33"),
}
_ARTICLE_TITLES = (
    "{sym} variants and the risk of disease in {org}.",
    "Structural basis for the role of {full} in {process}.",
    "Regulation of {sym} expression in {process}.",
    "Loss of {sym} impairs {process}.",
    "{full} ({sym}) is required for {process}.",
    "A genome-wide screen identifies {sym} as a regulator of {process}.",
    "Functional characterization of {sym} isoforms in {org}.",
)
_DOMAINS = ("N-terminal", "C-terminal", "catalytic", "DNA-binding", "regulatory")
_LIGANDS = ("ATP", "a small-molecule inhibitor", "zinc", "a peptide", "DNA")
_PROCESSES = ("DNA repair", "homologous recombination", "cell cycle control", "apoptosis",
              "transcriptional control", "ubiquitin-mediated degradation", "development",
              "immune signalling", "metabolism", "chromatin remodelling")
_JOURNALS = ("Nature", "Science", "Cell", "Nucleic acids research", "PloS one",
             "Proceedings of the National Academy of Sciences of the United States of America",
             "The Journal of biological chemistry", "Bioinformatics (Oxford, England)",
             "Cancer research", "Human molecular genetics", "Genome research",
             "The New England journal of medicine")
_TITLE_WORDS = ("regulation", "of", "BRCA1", "expression", "in", "breast", "cancer", "cells",
                "structural", "basis", "for", "DNA", "repair", "genome-wide", "analysis",
                "mutations", "protein", "interactions", "mouse", "models", "transcriptional",
                "control", "variants", "associated", "with", "risk", "ubiquitin", "ligase")
_PROVIDERS = (
    ("Silverchair Information Systems", "silverchair", "7898", "Full Text Sources",
     "subscription/membership/fee required", "https://academic.oup.com/article-lookup/doi/"),
    ("Europe PubMed Central", "EuropePMC", "5290", "Full Text Sources", "free resource",
     "https://europepmc.org/abstract/MED/"),
    ("MedlinePlus Health Information", "MEDPLUS", "3162", "Medical", "free resource",
     "https://medlineplus.gov/"),
    ("Online Mendelian Inheritance in Man", "OMIM", "3628", "Medical", "free resource",
     "https://omim.org/entry/"),
    ("UniProt", "UniProt", "4957", "Molecular Biology Databases", "free resource",
     "https://www.uniprot.org/uniprot/"),
    ("Protein Data Bank in Europe", "PDBe", "6060", "Molecular Biology Databases",
     "free resource", "https://www.ebi.ac.uk/pdbe/entry/pdb/"),
)
# Which providers plausibly link out from which database (indices into _PROVIDERS).
_PROVIDERS_BY_DB = {"pubmed": (0, 1, 2), "pmc": (1,), "gene": (2, 3), "protein": (4, 5),
                    "structure": (5,), "nuccore": (4,), "snp": (3,), "clinvar": (2, 3),
                    "*": (1, 4)}
_LIBRARY = ("Library of the National Institutes of Health", "nihlib", "4461",
            "Library Holdings", "full-text online", "https://nih.primo.exlibrisgroup.com/")


def _h(*parts: object) -> int:
    """A stable 64-bit hash (never Python's `hash`, which changes between processes)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _b36(n: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))


def _norm_db(db: str) -> str:
    db = (db or "").strip().lower()
    return DB_ALIASES.get(db, db)


class World:
    """Records and links; generated (lazy, deterministic) or loaded from JSON lines."""

    def __init__(self) -> None:
        self.seed: int | None = None
        self.size: int = 0
        self.version: int = 0  # the version served (see versions.py); 0: as generated/loaded
        self.rates = Rates()
        self._versions: Versions | None = None
        self._positions: dict[str, tuple[list[str], dict[str, int]]] = {}
        self._counts: dict[str, int] = {}
        # loaded worlds only
        self._links: dict[tuple[str, str], list[WorldLink]] = {}
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._linkouts: dict[tuple[str, str], list[LinkOut]] = {}
        self._linknames: dict[str, dict[str, str]] = {}
        # lines of a loaded file that were skipped or look wrong: kind -> line numbers
        self.load_problems: dict[str, list[int]] = {}
        # caches
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], list[WorldLink]] = OrderedDict()
        self._cache_max = 20000
        self._index: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._rel: dict[str, Any] = {}
        self._rel_lock = threading.RLock()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, seed: int = 1, size: int = 2000, version: int = 0,
                 rates: Rates | None = None) -> World:
        """A deterministic world of about `size` records (every database at least a dozen),
        as it is at `version` (0: as generated; N: after N steps of change, versions.py)."""
        if size < 1:
            raise BadInput(f"world size must be positive, got {size}")
        w = cls()
        w.seed = int(seed)
        w.size = int(size)
        w._set_version(version, rates)
        for db, share in _SHARE.items():
            w._counts[db] = max(_MIN_COUNT, len(_SPECIALS.get(db, ())), int(size * share))
        # The BRCA1 chain (index 0 of each database) is linked by construction: every
        # pairing joins stub 0 of one side to stub 0 of the other.
        return w

    @property
    def generated(self) -> bool:
        return self.seed is not None

    def _set_version(self, version: int, rates: Rates | None) -> None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise BadInput(f"world version must be a whole number >= 0, got {version!r}")
        self.version = version
        self.rates = (rates or Rates()).check()

    @classmethod
    def load(cls, path: str | Path, version: int = 0, rates: Rates | None = None) -> World:
        """A world from JSON lines: link lines and record lines (the `dump` format), as it is
        at `version` (0: as the file says)."""
        w = cls()
        w._set_version(version, rates)
        p = Path(path)
        try:
            fh = p.open("rb")
        except OSError as exc:
            raise BadInput(f"cannot read graph file {str(p)!r}: {exc.strerror}") from None
        with fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise BadInput(
                        f"{p}:{lineno}: not UTF-8 text (expected JSON lines, the "
                        "`emulate --dump` format)"
                    ) from None
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                    problem = w._load_line(obj)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise BadInput(
                        f"{p}:{lineno}: not a link or record line ({shorten(exc)})"
                    ) from None
                if problem:
                    w.load_problems.setdefault(problem, []).append(lineno)
        if not w._records:
            raise BadInput(f"graph file {str(p)!r} holds no links or records (expected JSON "
                           "lines, the `emulate --dump` format)")
        return w  # links keep the file's order (NCBI's order: by score, else as listed)

    def load_warnings(self, source: str) -> list[str]:
        """One line per kind of doubtful line in a loaded file, with a count and where."""
        out = []
        for problem, lines in sorted(self.load_problems.items()):
            where = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
            out.append(f"{source}: {len(lines)} link line{'s' if len(lines) > 1 else ''} "
                       f"{problem} (line{'s' if len(lines) > 1 else ''} {where})")
        return out

    def _load_line(self, obj: dict[str, Any]) -> str | None:
        """Add one line; a problem worth a warning is returned (the line skipped or kept)."""
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        if "linkname" in obj:
            dbfrom, dbto = _norm_db(obj["dbfrom"]), _norm_db(obj["dbto"])
            score = obj.get("score")
            link = WorldLink(dbfrom, str(obj["uid"]), str(obj["linkname"]), dbto,
                             str(obj["target"]), None if score is None else int(score))
            if not link.uid.isdigit() or not link.target.isdigit():
                raise ValueError("uid and target must be numeric UIDs")
            if not IDENTIFIER.match(link.linkname) or not IDENTIFIER.match(dbfrom) or (
                not IDENTIFIER.match(dbto)
            ):
                # no crawl could store it (labels and types must be identifiers): not served
                return "skipped: a link name or database that is not an identifier"
            pair = split_linkname(link.linkname)
            problem = (None if pair == (dbfrom, dbto)
                       else f"served, but the link name does not name its databases "
                            f"(as {dbfrom}_{dbto}_…)")
            self._links.setdefault((dbfrom, link.uid), []).append(link)
            self._linknames.setdefault(dbfrom, {})[link.linkname] = dbto
            for db, uid in ((dbfrom, link.uid), (dbto, link.target)):
                self._records.setdefault(db, {}).setdefault(uid, {"db": db, "uid": uid})
            return problem
        elif "db" in obj and "uid" in obj:
            db, uid = _norm_db(obj["db"]), str(obj["uid"])
            if not uid.isdigit():
                raise ValueError("uid must be a numeric UID")
            rec = {k: v for k, v in obj.items() if k != "linkouts"}
            rec["db"], rec["uid"] = db, uid
            self._records.setdefault(db, {})[uid] = rec
            if obj.get("linkouts"):
                self._linkouts[(db, uid)] = [LinkOut.from_json(d) for d in obj["linkouts"]]
            return None
        else:
            raise ValueError("expected keys dbfrom/uid/linkname/dbto/target or db/uid")

    # --- databases and records ----------------------------------------------------------------

    def databases(self) -> list[str]:
        """Every database that has records in this world."""
        if self.generated:
            return sorted(self._counts)
        return sorted(self._records)

    def has_db(self, db: str) -> bool:
        return _norm_db(db) in self.databases()

    def count(self, db: str) -> int:
        db = _norm_db(db)
        if self.generated:
            return self._counts.get(db, 0)
        return len(self._records.get(db, {}))

    def linknames(self, db: str) -> list[tuple[str, str]]:
        """(link name, target db) pairs a record of `db` can have, as einfo's LinkList."""
        db = _norm_db(db)
        if self.generated:
            return [(s.linkname, s.dbto) for s in CATALOG.get(db, ())]
        return sorted(self._linknames.get(db, {}).items())

    def _uid(self, db: str, i: int) -> int:
        specials = _SPECIALS.get(db, ())
        if i < len(specials):
            return specials[i]
        return _BASE[db] + (i - len(specials))

    def _index_of(self, db: str, uid: int) -> int | None:
        specials = _SPECIALS.get(db, ())
        if uid in specials:
            return specials.index(uid)
        i = uid - _BASE[db] + len(specials)
        if len(specials) <= i < self._counts.get(db, 0):
            return i
        return None

    def uids(self, db: str) -> Iterator[str]:
        """Every UID of `db`, in a stable order."""
        db = _norm_db(db)
        if self.generated:
            for i in range(self._counts.get(db, 0)):
                yield str(self._uid(db, i))
        else:
            yield from self._records.get(db, {})

    def records(self, db: str) -> Iterator[dict[str, Any]]:
        """Every record of `db` with its accession/name fields."""
        db = _norm_db(db)
        for uid in self.uids(db):
            rec = self.record(db, uid)
            if rec is not None:
                yield rec

    def record(self, db: str, uid: str | int) -> dict[str, Any] | None:
        """The record's fields (accession, name, title, organism, ...) or None if unknown."""
        db, uid = _norm_db(db), str(uid)
        if not self.generated:
            return self._records.get(db, {}).get(uid)
        if not uid.isdigit() or db not in self._counts:
            return None
        i = self._index_of(db, int(uid))
        if i is None:
            return None
        return self._make_record(db, i, uid)

    # --- organisms ----------------------------------------------------------------------------

    def _taxon_index(self, db: str, i: int) -> int:
        """A record's own taxon: a fixed heavy-tailed table over residues mod 1000 (genes,
        samples, runs); records derived from a gene take that gene's taxon instead."""
        if i < _human_first(db):  # BRCA1, TP53, ... and the BRCA1 chain are human
            return 0
        slot = (i * _SLOT_STEP + _h(self.seed, "tax", db) % 1000) % 1000
        return _TAXON_SLOTS[slot] % self._counts["taxonomy"]

    def _own_taxa(self, db: str) -> np.ndarray:
        """`_taxon_index` for every record of `db` at once (for masks such as human genes)."""
        n = self._counts.get(db, 0)
        shift = _h(self.seed, "tax", db) % 1000
        slots = (np.arange(n, dtype=np.int64) * _SLOT_STEP + shift) % 1000
        taxa = _TAXON_SLOT_ARRAY[slots] % self._counts["taxonomy"]
        taxa[: _human_first(db)] = 0
        return taxa

    def _organism_index(self, db: str, i: int) -> int:
        """The taxon a record belongs to, consistent along gene → RNA/protein → structure."""
        if db in _GENE_CHILDREN:
            g = self._gene_of(db, i)
            return self._taxon_index(db, i) if g is None else self._taxon_index("gene", g)
        return self._taxon_index(db, i)

    def organism(self, db: str, i: int) -> tuple[int, str]:
        t = self._organism_index(db, i)
        return self._uid("taxonomy", t), self._taxon_name(t)

    def _taxon_name(self, t: int) -> str:
        if t < len(_ORGANISMS):
            return _ORGANISMS[t]
        r = _h(self.seed, "taxname", t)
        return f"{_GENERA[r % len(_GENERA)]} sp. {_b36(r >> 8, 5)}"

    def _gene_symbol(self, i: int) -> tuple[str, str, str]:
        uid = self._uid("gene", i)
        if uid in _SPECIAL_GENES:
            return _SPECIAL_GENES[uid]
        f = i % len(_GENE_FAMILIES)
        n = i // len(_GENE_FAMILIES) + 1
        r = _h(self.seed, "chr", i)
        chrom = f"{r % 22 + 1}{'pq'[r >> 5 & 1]}{r >> 6 & 31}.{r >> 11 & 3}"
        return f"{_GENE_FAMILIES[f]}{n}", f"{_GENE_WORDS[f]} {n}", chrom

    def _protein_name(self, g: int) -> str:
        """What a gene's protein products are called (the gene's full name unless known)."""
        return _PROTEIN_NAMES.get(self._uid("gene", g), self._gene_symbol(g)[1])

    # --- shared pairings (see pairing.py) -----------------------------------------------------

    def _pairing(self, fwd: str) -> Pairing:
        """The relation behind a forward link name and its reverse, built once per world."""
        with self._rel_lock:
            hit = self._rel.get(fwd)
            if hit is None:
                hit = self._rel[fwd] = self._build_pairing(fwd)
        return hit

    def _build_pairing(self, fwd: str) -> Pairing:
        dba, dbb, rev, kind = _RELATIONS[fwd]
        na, nb = self._counts[dba], self._counts[dbb]
        sa, sb = _SPEC[fwd], _SPEC.get(rev)
        seed = self.seed or 0
        eligible = self._own_taxa("gene") == 0 if kind == "human" else None
        if kind == "coding":  # only genes with a protein have solved structures
            eligible = np.diff(self._pairing("gene_protein").a) > 0
        deg_a = degrees(_h(seed, "present", fwd), _h(seed, "size", fwd), na,
                        presence=sa.presence, mean=sa.mean, cap=sa.cap, n_target=nb,
                        eligible=eligible)
        if sb is None or kind != "config":
            return Pairing.partition(deg_a, nb)
        deg_b = degrees(_h(seed, "present", rev), _h(seed, "size", rev), nb,
                        presence=sb.presence, mean=sb.mean, cap=sb.cap, n_target=na)
        jitter = (_h(seed, "mult", fwd) % 1000) / 10_000 - 0.05
        return Pairing.build(deg_a, deg_b, jitter)

    def _topics(self) -> Pairing:
        """Articles share research topics; similar articles are those sharing one (symmetric)."""
        with self._rel_lock:
            hit = self._rel.get("topics")
            if hit is None:
                seed = self.seed or 0
                npub = self._counts["pubmed"]
                ntop = max(3, npub // 6)
                deg_a = degrees(_h(seed, "present", "topic"), _h(seed, "size", "topic"), npub,
                                presence=0.95, mean=1.5, cap=4, n_target=ntop)
                deg_b = degrees(_h(seed, "present", "members"), _h(seed, "size", "members"),
                                ntop, presence=1.0, mean=12, cap=80, n_target=npub,
                                hubs=False)
                hit = self._rel["topics"] = Pairing.build(deg_a, deg_b, 0.0)
        return hit

    def _pmc_stride(self) -> tuple[int, int]:
        """pmc j is the full text of pubmed (j * m mod #pubmed): a one-to-one pairing."""
        with self._rel_lock:
            hit = self._rel.get("pmc")
            if hit is None:
                npub = self._counts["pubmed"]
                m = max(1, int(npub * 0.618)) % npub or 1
                while gcd(m, npub) != 1:
                    m = m + 1 if m + 1 < npub else 1
                hit = self._rel["pmc"] = (m, pow(m, -1, npub) if npub > 1 else 1)
        return hit

    def _refseq_count(self, g: int) -> int:
        """How many RefSeq RNAs (NM_/XM_) a gene has, each with its protein (NP_/XP_)."""
        with self._rel_lock:
            draw = self._rel.get("refseq")
            if draw is None:
                seed = self.seed or 0
                spec = _SPEC["gene_protein_refseq"]
                n = self._counts["gene"]
                draw = self._rel["refseq"] = degrees(
                    _h(seed, "present", "refseq"), _h(seed, "size", "refseq"), n,
                    presence=spec.presence, mean=spec.mean, cap=spec.cap,
                    n_target=self._counts["protein"], hub_scale=(8, 4))
        plo, phi = self._pairing("gene_protein").range_a(g)
        nlo, nhi = self._pairing("gene_nuccore").range_a(g)
        return int(min(int(draw[g]), phi - plo, nhi - nlo))

    def _gene_of(self, db: str, i: int) -> int | None:
        """The one gene a protein, RNA, variant or ClinVar record belongs to."""
        return self._pairing(_GENE_CHILDREN[db]).owner_b(i)

    def _place(self, db: str, i: int) -> tuple[int, int, int] | None:
        """(gene, position among the gene's records of `db`, the gene's RefSeq count)."""
        g = self._gene_of(db, i)
        if g is None:
            return None
        lo, _ = self._pairing(_GENE_CHILDREN[db]).range_a(g)
        return g, i - lo, self._refseq_count(g)

    def _chains(self, i: int) -> list[int]:
        """The protein records a structure holds: one isoform of its gene (RefSeq when the
        gene has some) and often the same protein's GenBank record."""
        place = self._place("structure", i)
        if place is None:
            return []
        g, q, r = place
        lo, hi = self._pairing("gene_protein").range_a(g)
        m = hi - lo
        if m <= 0:
            return []
        held = [lo + q % (r or m)]
        if m > r > 0 and _h(self.seed, "chains", i) % 2:
            held.append(lo + r + q % (m - r))
        return held

    def _structures_of(self, i: int) -> list[int]:
        """protein_structure: the structures of the protein's gene that hold this protein."""
        g = self._gene_of("protein", i)
        if g is None:
            return []
        lo, hi = self._pairing("gene_structure").range_a(g)
        return [s for s in range(lo, hi) if i in self._chains(s)]

    def _make_record(self, db: str, i: int, uid: str) -> dict[str, Any]:
        rec: dict[str, Any] = {"db": db, "uid": uid}
        if db == "gene":
            sym, desc, chrom = self._gene_symbol(i)
            taxid, org = self.organism(db, i)
            rec.update(name=sym, description=desc, organism=org, taxid=taxid,
                       chromosome=chrom.split("p")[0].split("q")[0], maplocation=chrom)
        elif db in ("nuccore", "protein"):
            acc, title = self._sequence_names(db, i)
            version = 1 + _h(self.seed, "ver", db, i) % 3 if i else 4 if db == "nuccore" else 1
            taxid, org = self.organism(db, i)
            rec.update(accession=acc, accessionversion=f"{acc}.{version}", title=title,
                       organism=org, taxid=taxid, name=title)
        elif db == "pubmed":
            rec.update(self._article(i))
            rec["name"] = rec["title"]
        elif db == "structure":
            acc = _pdb_id(i)
            taxid, org = self.organism(db, i)
            rec.update(accession=acc, name=acc, title=self._structure_title(i), organism=org,
                       taxid=taxid)
        elif db == "taxonomy":
            rec.update(name=self._taxon_name(i))
            if i < len(_COMMON_NAMES):
                rec["commonname"] = _COMMON_NAMES[i]
        elif db == "snp":
            g = self._gene_of(db, i)
            g = i % self._counts["gene"] if g is None else g
            sym, _, chrom = self._gene_symbol(g)
            rec.update(accession=f"rs{uid}", name=f"rs{uid}", gene=sym,
                       gene_id=self._uid("gene", g),
                       chromosome=chrom.split("p")[0].split("q")[0],
                       significance="pathogenic" if i == 0 else "")
        elif db == "pmc":
            npub = self._counts["pubmed"]
            art = self._article(i * self._pmc_stride()[0] % npub)
            rec.update(accession=f"PMC{uid}", name=f"PMC{uid}", title=art["title"],
                       journal=art["journal"])
        elif db == "homologene":
            members = self._pairing("gene_homologene").from_b(i)
            g = min(members) if members else i % self._counts["gene"]
            sym = self._gene_symbol(g)[0]
            rec.update(name=sym, title=sym, description=f"Gene conserved in {sym} group")
        elif db == "clinvar":
            g = self._gene_of(db, i)
            g = i % self._counts["gene"] if g is None else g
            sym = self._gene_symbol(g)[0]
            rna = f"NM_{100000 + i:06d}.1"
            if self._refseq_count(g):
                lo, _ = self._pairing("gene_nuccore").range_a(g)
                rna = self.record("nuccore", self._uid("nuccore", lo))["accessionversion"]
            rec.update(accession=f"VCV{int(uid):09d}",
                       name=f"{rna}({sym}):c.{68 + i}del")
        elif db == "cdd":
            rec.update(accession=f"cd{i + 10000:05d}", name=f"cd{i + 10000:05d}",
                       title=f"RING_{_GENE_FAMILIES[i % len(_GENE_FAMILIES)]}",
                       description=f"{_GENE_WORDS[i % len(_GENE_WORDS)]} domain")
        elif db == "biosample":
            taxid, org = self.organism(db, i)
            rec.update(accession=f"SAMN{uid}", name=f"SAMN{uid}", organism=org, taxid=taxid,
                       title=f"{org} sample {i + 1}")
        elif db == "sra":
            taxid, org = self.organism(db, i)
            rec.update(accession=f"SRX{uid}", name=f"SRX{uid}", organism=org, taxid=taxid,
                       title=f"RNA-Seq of {org} tissue {i % 17 + 1}")
        return rec

    def _article(self, i: int) -> dict[str, str]:
        """Title, journal and date of an article; it is about a gene it links to, if any."""
        r = _h(self.seed, "pub", i)
        about = self._article_gene(i)
        if about is None:
            words = [_TITLE_WORDS[(r >> (3 * k)) % len(_TITLE_WORDS)] for k in range(7)]
            title = " ".join(words).capitalize() + "."
        else:
            sym, full, _ = self._gene_symbol(about)
            org = self._taxon_name(self._taxon_index("gene", about))
            title = _ARTICLE_TITLES[(r >> 20) % len(_ARTICLE_TITLES)].format(
                sym=sym, full=full, org=org, process=_PROCESSES[(r >> 26) % len(_PROCESSES)])
            title = title[0].upper() + title[1:]
        return {"title": title, "journal": _JOURNALS[r % len(_JOURNALS)],
                "pubdate": f"{1990 + (r >> 40) % 35} {_MONTHS[(r >> 50) % 12]}"}

    def _article_gene(self, i: int) -> int | None:
        """The gene an article is about: one it links (pubmed_gene), else the gene of a
        protein or RNA it is cited by."""
        genes = self._pairing("gene_pubmed").from_b(i)
        if genes:
            return min(genes)
        for fwd, db in (("protein_pubmed", "protein"), ("nuccore_pubmed", "nuccore")):
            for j in self._pairing(fwd).from_b(i)[:1]:
                return self._gene_of(db, j)
        return None

    def _sequence_names(self, db: str, i: int) -> tuple[str, str]:
        """Accession and title of an RNA or protein, named after the gene it comes from.

        RefSeq ones (the gene's first r records) pair up: transcript variant N (NM_) encodes
        isoform N (NP_); model ones are XM_/XP_ "X" variants; the rest are GenBank records."""
        if i == 0:
            return (("NM_007294", "Homo sapiens BRCA1 DNA repair associated (BRCA1), "
                     "transcript variant 1, mRNA") if db == "nuccore" else
                    ("NP_009225",
                     "breast cancer type 1 susceptibility protein isoform 1 [Homo sapiens]"))
        place = self._place(db, i)
        num = f"{100000 + i:06d}" if i < 900000 else f"{i:09d}"
        if place is None:  # a record no gene claims (only in degenerate tiny worlds)
            org = self._taxon_name(self._taxon_index(db, i))
            return ((f"NR_{num}", f"{org} uncharacterized RNA, ncRNA") if db == "nuccore"
                    else (f"WP_{num}", f"hypothetical protein [{org}]"))
        g, p, r = place
        sym, full, _ = self._gene_symbol(g)
        org = self._taxon_name(self._taxon_index("gene", g))
        curated = (r + 1) // 2
        if db == "nuccore":
            if p < curated:
                return f"NM_{num}", f"{org} {full} ({sym}), transcript variant {p + 1}, mRNA"
            if p < r:
                return (f"XM_{num}", f"PREDICTED: {org} {full} ({sym}), transcript variant "
                        f"X{p - curated + 1}, mRNA")
            cds = "complete" if _h(self.seed, "cds", i) % 3 else "partial"
            return _genbank(i, 2, 6), f"{org} {full} ({sym}) mRNA, {cds} cds"
        pname = self._protein_name(g)
        if p < curated:
            return f"NP_{num}", f"{pname} isoform {p + 1} [{org}]"
        if p < r:
            return f"XP_{num}", f"{pname} isoform X{p - curated + 1} [{org}]"
        if _h(self.seed, "partial", i) % 3:
            return _genbank(i, 3, 5), f"{pname} [{org}]"
        return _genbank(i, 3, 5), f"{sym}, partial [{org}]"

    def _structure_title(self, i: int) -> str:
        """Named after the gene's protein it holds (method and detail vary per structure)."""
        if i == 0:
            return "Solution structure of the BRCA1/BARD1 RING-domain heterodimer"
        g = self._gene_of("structure", i)
        if g is None:
            return f"Crystal structure of {self._gene_symbol(i % self._counts['gene'])[1]}"
        r = _h(self.seed, "method", i)
        how = ("Crystal structure", "Cryo-EM structure", "Solution structure")[r % 3]
        sym = self._gene_symbol(g)[0]
        org = self._taxon_name(self._taxon_index("gene", g))
        pname = self._protein_name(g)
        return (f"{how} of {org} {pname}",
                f"{how} of the {_DOMAINS[(r >> 4) % len(_DOMAINS)]} domain of {sym}",
                f"{how} of {pname} bound to {_LIGANDS[(r >> 8) % len(_LIGANDS)]}")[(r >> 12) % 3]

    # --- links --------------------------------------------------------------------------------

    def links_from(self, db: str, uid: str | int, version: int | None = None
                   ) -> list[WorldLink]:
        """Every link of one record, grouped by link name, scored ones by descending score,
        at `version` (default: the world's own)."""
        db, uid = _norm_db(db), str(uid)
        v = self.version if version is None else int(version)
        if v:
            return self._changes().links(v, db, uid)
        return self._base_links(db, uid)

    def _base_links(self, db: str, uid: str) -> list[WorldLink]:
        """The links of a record at version 0 (cached; never mutated by callers)."""
        if not self.generated:
            return list(self._links.get((db, uid), ()))
        key = (db, uid)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return list(hit)
        links = self._generate_links(db, uid)
        with self._lock:
            self._cache[key] = links
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return list(links)

    # --- versions (versions.py) ----------------------------------------------------------------

    def _changes(self) -> Versions:
        with self._rel_lock:
            if self._versions is None:
                scored = frozenset(s.linkname for s in _SPEC.values() if s.scored)
                self._versions = Versions(self, self.rates, hash_=_h, reverse=REVERSE_LINKS,
                                          subsets=SUBSET_LINKS, scored=scored)
        return self._versions

    def at_version(self, version: int) -> World:
        """The same world served at another version (a new object; this one is unchanged)."""
        if self.generated:
            return World.generate(self.seed or 0, self.size, version, self.rates)
        w = World()
        w.__dict__.update({k: v for k, v in self.__dict__.items()
                           if k in ("_counts", "_links", "_records", "_linkouts",
                                    "_linknames", "load_problems")})
        w._set_version(version, self.rates)
        return w

    def record_status(self, db: str, uid: str | int, version: int | None = None
                      ) -> Retired | None:
        """None while the record is current at `version` (default: the world's own), else
        `Retired(step, "replaced", by_uid)` or `Retired(step, "withdrawn")`."""
        db, uid = _norm_db(db), str(uid)
        v = self.version if version is None else int(version)
        if not v or self.record(db, uid) is None:
            return None
        return self._changes().status(db, uid, v)

    def retired(self, db: str, version: int | None = None) -> dict[str, Retired]:
        """Every record of `db` not current at `version`, by UID (walks the database)."""
        out = {}
        for uid in self.uids(db):
            st = self.record_status(db, uid, version)
            if st is not None:
                out[uid] = st
        return out

    def summary(self, db: str, uid: str | int) -> dict[str, Any] | None:
        """What ESummary reports of a record at the world's version: its fields, with
        `status` ("replaced" / "withdrawn") and `replaced_by` (+ `replaced_by_accession`)
        when it is no longer current; None where NCBI has no document summary left
        (`cannot get document summary`: unknown, or withdrawn outside gene/nuccore/protein)."""
        db, uid = _norm_db(db), str(uid)
        rec = self.record(db, uid)
        if rec is None:
            return None
        st = self.record_status(db, uid)
        if st is not None:
            rec = dict(rec, status=st.kind)
            if st.by is not None:
                rec["replaced_by"] = st.by
        if rec.get("replaced_by") and "replaced_by_accession" not in rec:
            succ = self.record(db, str(rec["replaced_by"])) or {}
            rec = dict(rec, replaced_by_accession=succ.get("accessionversion",
                                                           str(rec["replaced_by"])))
        if rec.get("status") == "withdrawn" and db not in WITHDRAWN_KEEP_DOCSUM:
            return None
        if rec.get("status") == "replaced" and db not in REPLACEABLE:
            return None
        return rec

    def link_changes(self, version_from: int, version_to: int, db: str, uid: str | int
                     ) -> tuple[list[WorldLink], list[WorldLink]]:
        """(added, dropped): the links of one record at `version_to` and not at
        `version_from`, and the other way round (compared by link name and target)."""
        before = self.links_from(db, uid, version_from)
        after = self.links_from(db, uid, version_to)
        seen_before = {(lk.linkname, lk.target) for lk in before}
        seen_after = {(lk.linkname, lk.target) for lk in after}
        return ([lk for lk in after if (lk.linkname, lk.target) not in seen_before],
                [lk for lk in before if (lk.linkname, lk.target) not in seen_after])

    def _base_links_named(self, db: str, uid: str, name: str) -> list[WorldLink]:
        """The version-0 links of one link name of a record (not a subset's): only that name
        is computed when the record's links are not cached (a version asks this of many)."""
        if not self.generated:
            return [lk for lk in self._links.get((db, uid), ()) if lk.linkname == name]
        with self._lock:
            hit = self._cache.get((db, uid))
        if hit is not None:
            return [lk for lk in hit if lk.linkname == name]
        spec = _SPEC.get(name)
        i = self._index_of(db, int(uid)) if uid.isdigit() and db in self._counts else None
        if spec is None or spec.subset_of or i is None or spec not in CATALOG.get(db, ()):
            return [lk for lk in self._base_links(db, uid) if lk.linkname == name]
        return [WorldLink(db, uid, name, spec.dbto, str(self._uid(spec.dbto, t)),
                          score if spec.scored else None)
                for t, score in self._targets(db, i, spec)]

    def _protected(self, db: str, uid: str) -> bool:
        """The well-known records (gene 672's chain, ...) never retire."""
        return self.generated and uid.isdigit() and int(uid) in _SPECIALS.get(db, ())

    def _db_size(self, db: str) -> int:
        return self.count(db)

    def _position_table(self, db: str) -> tuple[list[str], dict[str, int]]:
        with self._rel_lock:
            hit = self._positions.get(db)
            if hit is None:
                uids = list(self._records.get(db, {}))
                hit = self._positions[db] = (uids, {u: k for k, u in enumerate(uids)})
        return hit

    def _uid_at(self, db: str, k: int) -> str:
        """The UID at position k of `db` (0 <= k < count)."""
        if self.generated:
            return str(self._uid(db, k))
        return self._position_table(db)[0][k]

    def _pos_of(self, db: str, uid: str) -> int | None:
        if self.generated:
            if db not in self._counts or not uid.isdigit():
                return None
            return self._index_of(db, int(uid))
        return self._position_table(db)[1].get(uid)

    def _names_of(self, db: str) -> list[tuple[str, str]]:
        """(link name, dbto) a record of `db` can have, in version 0's order."""
        if self.generated:
            return [(s.linkname, s.dbto) for s in CATALOG.get(db, ())]
        return list(self._linknames.get(db, {}).items())

    def _generate_links(self, db: str, uid: str) -> list[WorldLink]:
        if db not in self._counts or not uid.isdigit():
            return []
        i = self._index_of(db, int(uid))
        if i is None:
            return []
        out: list[WorldLink] = []
        parents: dict[str, list[tuple[int, int]]] = {}
        for spec in CATALOG.get(db, ()):
            if spec.subset_of:
                pairs = _subset(spec.linkname, parents.get(spec.subset_of, []), i,
                                self.seed or 0)
            else:
                pairs = self._targets(db, i, spec)
                parents[spec.linkname] = pairs
            out.extend(WorldLink(db, uid, spec.linkname, spec.dbto,
                                 str(self._uid(spec.dbto, t)), score if spec.scored else None)
                       for t, score in pairs)
        return out

    def _targets(self, db: str, i: int, spec: LinkSpec) -> list[tuple[int, int]]:
        """(target index, score) pairs of one link name of one record; [] when absent.

        Links with a reverse link name come from a shared pairing, so both ends agree."""
        name = spec.linkname
        if spec.dbto == "taxonomy":  # the record's own organism
            return [(self._organism_index(db, i), 0)]
        if db == "taxonomy":  # a taxon lists the records whose organism it is (hubs: 9606)
            return self._taxon_members(i, spec)
        if name in _SIDES:
            fwd, side_a = _SIDES[name]
            pairing = self._pairing(fwd)
            found = pairing.from_a(i) if side_a else pairing.from_b(i)
            return self._unscored(spec.dbto, found[: spec.cap])
        if name in _REFSEQ_LINKS:  # the gene's RefSeq records: the first r of its range
            lo, _ = self._pairing(_REFSEQ_LINKS[name]).range_a(i)
            return self._unscored(spec.dbto, range(lo, lo + self._refseq_count(i)))
        if name == "protein_structure":
            return self._unscored(spec.dbto, self._structures_of(i))
        if name == "structure_protein":
            return self._unscored(spec.dbto, self._chains(i))
        if name in ("nuccore_protein", "protein_nuccore"):
            return self._unscored(spec.dbto, self._encoded(db, i))
        if name == "protein_protein":
            return self._identical(i, spec.cap)
        if name == "pubmed_pubmed":
            return self._similar_articles(i, spec.cap)
        if name == "pubmed_pmc":
            j = i * self._pmc_stride()[1] % self._counts["pubmed"]
            return [(j, 0)] if j < self._counts["pmc"] else []
        if name == "pmc_pubmed":
            return [(i * self._pmc_stride()[0] % self._counts["pubmed"], 0)]
        if name == "homologene_protein":  # the first protein of each member gene
            prots = []
            for g in self._pairing("gene_homologene").from_b(i):
                lo, hi = self._pairing("gene_protein").range_a(g)
                if hi > lo:
                    prots.append(lo)
            return self._unscored(spec.dbto, prots[: spec.cap])
        if name in ("structure_pubmed", "snp_pubmed", "clinvar_pubmed"):
            cited = self._gene_articles(db, i, spec)
            if cited is not None:
                return cited
        return self._draw(db, i, spec)  # one-way links NCBI keeps no reverse of here

    def _gene_articles(self, db: str, i: int, spec: LinkSpec) -> list[tuple[int, int]] | None:
        """A structure's, variant's or ClinVar record's citations: articles about its gene
        (None when it has no gene with articles: then drawn at random)."""
        g = self._gene_of(db, i)
        articles = [] if g is None else self._pairing("gene_pubmed").from_a(g)
        if not articles:
            return None
        rng = random.Random(_h(self.seed, db, i, spec.linkname))
        if rng.random() >= spec.presence:
            return []
        k = min(len(articles), spec.cap, 1 + int(rng.random() * 3))
        return self._unscored(spec.dbto, rng.sample(articles, k))

    def _unscored(self, dbto: str, targets: Iterable[int]) -> list[tuple[int, int]]:
        """NCBI lists unscored links newest (highest UID) first."""
        return sorted(((t, 0) for t in targets), key=lambda p: -self._uid(dbto, p[0]))

    def _encoded(self, db: str, i: int) -> list[int]:
        """RNA ↔ protein: the gene's k-th RNA encodes its k-th protein (variant N, isoform N)."""
        place = self._place(db, i)
        if place is None:
            return []
        g, p, _ = place
        other = "protein" if db == "nuccore" else "nuccore"
        lo, hi = self._pairing(_GENE_CHILDREN[other]).range_a(g)
        return [lo + p] if lo + p < hi else []

    def _identical(self, i: int, cap: int) -> list[tuple[int, int]]:
        """Identical Proteins: a gene's proteins with the same isoform (position mod r)."""
        place = self._place("protein", i)
        if place is None:
            return []
        g, p, r = place
        lo, hi = self._pairing("gene_protein").range_a(g)
        step = r if r > 0 else max(1, (hi - lo + 1) // 2)
        mates = [lo + x for x in range(p % step, hi - lo, step) if x != p]
        scored = [(t, _pair_score(self.seed, "protein", i, t)) for t in mates]
        return sorted(scored, key=lambda ts: -ts[1])[:cap]

    def _similar_articles(self, i: int, cap: int) -> list[tuple[int, int]]:
        """Articles sharing a topic, with one score per pair (the same from both ends); the
        article itself first with the top score, as NCBI lists it."""
        topics = self._topics()
        shared: dict[int, int] = {}
        for t in topics.from_a(i):
            for j in topics.from_b(t):
                if j != i:
                    shared[j] = shared.get(j, 0) + 1
        if not shared:
            return []
        pairs = sorted(((j, _pair_score(self.seed, "pubmed", i, j) + 4_000_000 * (k - 1))
                        for j, k in shared.items()), key=lambda ts: (-ts[1], ts[0]))[: cap - 1]
        return [(i, pairs[0][1] + 7_000_000), *pairs]

    def _draw(self, db: str, i: int, spec: LinkSpec) -> list[tuple[int, int]]:
        """A one-way link (no reverse name in this world): heavy-tailed targets by seeded RNG."""
        n = self._counts.get(spec.dbto, 0)
        rng = random.Random(_h(self.seed, db, i, spec.linkname))
        if rng.random() >= spec.presence:
            return []
        # Pareto(alpha=1.5) scaled to the spec's mean; the first records of a db are hubs.
        k = int(spec.mean / 3.0 * (1.0 - rng.random()) ** (-1 / 1.5)) + 1
        if i < 3 and spec.cap > 1:
            k = max(k, min(spec.cap, n // 3, int(spec.mean * (50 if i == 0 else 10))))
        k = max(1, min(k, spec.cap, n - (1 if db == spec.dbto else 0)))
        chosen: dict[int, None] = {}
        if k >= n // 2:
            pool = [t for t in range(n) if not (db == spec.dbto and t == i)]
            rng.shuffle(pool)
            for t in pool:
                if len(chosen) >= k:
                    break
                chosen.setdefault(t)
        else:
            tries = 0
            while len(chosen) < k and tries < 20 * k:
                tries += 1
                t = int(n * rng.random() ** 2.5)  # popular low-index records
                if db == spec.dbto and t == i:
                    continue
                chosen.setdefault(t)
        return self._unscored(spec.dbto, chosen)

    def _taxon_member_indices(self, db: str, t: int) -> Iterator[int]:
        """Indices of the records of `db` whose organism is taxon t, gene by gene for records
        derived from genes (so taxonomy_protein is the inverse of protein_taxonomy)."""
        if db in _GENE_CHILDREN:
            pairing = self._pairing(_GENE_CHILDREN[db])
            for g in self._taxon_member_indices("gene", t):
                lo, hi = pairing.range_a(g)
                yield from range(lo, hi)
            return
        n = self._counts.get(db, 0)
        shift = _h(self.seed, "tax", db) % 1000
        ntax = self._counts["taxonomy"]
        # record i sits in slot (i * _SLOT_STEP + shift) % 1000: invert that per matching slot
        residues = sorted((s - shift) * _SLOT_INVERSE % 1000 for s in range(1000)
                          if _TAXON_SLOTS[s] % ntax == t)
        pinned = min(n, _human_first(db))
        if t == 0:
            yield from range(pinned)
        base = 0
        while residues and base < n:
            for r in residues:
                if pinned <= base + r < n:
                    yield base + r
            base += 1000

    def _taxon_members(self, t: int, spec: LinkSpec) -> list[tuple[int, int]]:
        members = list(islice(self._taxon_member_indices(spec.dbto, t), spec.cap))
        return self._unscored(spec.dbto, members)

    def linkouts(self, db: str, uid: str | int) -> list[LinkOut]:
        """LinkOut entries of a record (some records have none; libraries are separate)."""
        db, uid = _norm_db(db), str(uid)
        if self.version and self.record_status(db, uid) is not None:
            return []  # a replaced or withdrawn record keeps no LinkOut
        if not self.generated:
            return list(self._linkouts.get((db, uid), ()))
        if self.record(db, uid) is None:
            return []
        r = _h(self.seed, "linkout", db, uid)
        out: list[LinkOut] = []
        providers = _PROVIDERS_BY_DB.get(db, _PROVIDERS_BY_DB["*"])
        if r % 10 < 6:
            for k in range(1 + (r >> 8) % 2):
                p = _PROVIDERS[providers[(r >> (12 + 4 * k)) % len(providers)]]
                name, abbr, pid, cat, attr, url = p
                lo = LinkOut(url + uid, name, abbr, pid, cat, attr)
                if lo not in out:
                    out.append(lo)
        if db == "pubmed" and r % 5 == 0:
            name, abbr, pid, cat, attr, url = _LIBRARY
            out.append(LinkOut(url + "discovery/search?query=pmid," + uid, name, abbr, pid,
                               cat, attr, library=True))
        return out

    # --- searching ----------------------------------------------------------------------------

    def lookup(self, db: str, field: str, value: str) -> list[str] | None:
        """UIDs whose `field` matches `value` (case-insensitive); None for an unknown field."""
        db = _norm_db(db)
        field = field.lower().strip()
        value = value.strip().strip('"')
        if field in ("uid", "uids"):
            return [value] if value.isdigit() and self.record(db, value) else []
        if field in ("accn", "accession", "pacc", "all fields", "all", "", "pdbacc", "rs",
                     "pmcid", "gene", "sym", "gene name", "preferred symbol", "title"):
            idx = self._search_index(db)
            key = value.lower()
            hits = list(idx.get(key, []))
            if not hits and "." in key:  # accession with a version
                base = key.rpartition(".")
                hits = [u for u in idx.get(base[0], [])
                        if str(self.record(db, u).get("accessionversion", "")).lower() == key]
            if field in ("all fields", "all", "") and key.isdigit() and self.record(db, key):
                hits = [key, *[h for h in hits if h != key]]
            return hits
        if field in ("orgn", "organism", "porgn"):
            tax = self._resolve_organism(value)
            return [] if tax is None else list(self._organism_members(db, tax))
        return None

    def _taxon_names(self) -> dict[str, str]:
        """Lower-case scientific name -> taxonomy UID, built once."""
        with self._lock:
            names = self._index.get(("taxonomy", "names"))
        if names is None:
            names = {}
            for rec in self.records("taxonomy"):
                if rec.get("name"):
                    names.setdefault(str(rec["name"]).lower(), [rec["uid"]])
            with self._lock:
                self._index[("taxonomy", "names")] = names
        return {k: v[0] for k, v in names.items()}

    def _resolve_organism(self, value: str) -> str | None:
        """A taxonomy UID from `human`, `Homo sapiens`, `9606` or `txid9606`."""
        v = value.lower().strip()
        v = v.removeprefix("txid")
        if v.isdigit():
            return v if self.record("taxonomy", v) else None
        if v in _ORG_ALIASES and self.record("taxonomy", _ORG_ALIASES[v]):
            return str(_ORG_ALIASES[v])
        return self._taxon_names().get(v)

    def _organism_members(self, db: str, tax: str) -> Iterator[str]:
        if self.generated:
            t = self._index_of("taxonomy", int(tax))
            if db == "taxonomy" or db not in self._counts or t is None:
                return
            for i in sorted(self._taxon_member_indices(db, t)):
                yield str(self._uid(db, i))
            return
        names = self._taxon_names()
        for rec in self.records(db):
            org = rec.get("organism")
            if org is not None and names.get(str(org).lower()) == tax:
                yield rec["uid"]

    def _search_index(self, db: str) -> dict[str, list[str]]:
        """accession / name / symbol (lower case, no version) -> UIDs, built once per db."""
        key = (db, "search")
        with self._lock:
            idx = self._index.get(key)
        if idx is not None:
            return idx
        idx = {}
        for rec in self.records(db):
            for f in ("accession", "name"):
                v = rec.get(f)
                if v and rec["uid"] not in idx.get(str(v).lower(), ()):
                    idx.setdefault(str(v).lower(), []).append(rec["uid"])
            av = rec.get("accessionversion")
            if av:
                idx.setdefault(str(av).lower(), []).append(rec["uid"])
        with self._lock:
            self._index[key] = idx
        return idx

    # --- dump ---------------------------------------------------------------------------------

    def iter_links(self, version: int | None = None) -> Iterator[WorldLink]:
        """Every link of the world at `version` (default: its own), record by record."""
        v = self.version if version is None else int(version)
        for db in self.databases():
            for uid in self.uids(db):
                if v:
                    yield from self._changes().links(v, db, uid)
                else:
                    yield from (self._generate_links(db, uid) if self.generated
                                else self._links.get((db, uid), ()))

    def dump(self, path: str | Path) -> int:
        """Write every record line and link line (JSON lines); returns the number of links."""
        n = 0
        with Path(path).open("w", encoding="utf-8") as fh:
            for db in self.databases():
                for rec in self.records(db):
                    line = dict(rec)
                    st = self.record_status(db, rec["uid"])
                    if st is not None:  # what the version says of it (summary() serves it)
                        line["status"] = st.kind
                        if st.by is not None:
                            line["replaced_by"] = st.by
                    los = self.linkouts(db, rec["uid"])
                    if los:
                        line["linkouts"] = [lo.to_json() for lo in los]
                    fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            for link in self.iter_links():
                fh.write(json.dumps(link._asdict(), separators=(",", ":")) + "\n")
                n += 1
        return n


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _make_taxon_slots() -> tuple[int, ...]:
    """1000 slots, Zipf-like over taxa: half the records are human (9606), then mouse, ..."""
    slots: list[int] = [0] * 500 + [1] * 120 + [2] * 60 + [3] * 40 + [4] * 30 + [5] * 20
    t = 6
    while len(slots) < 1000:
        slots.extend([t] * max(1, 40 // (t - 4)))
        t += 1
    return tuple(slots[:1000])


_TAXON_SLOTS = _make_taxon_slots()
_SLOT_STEP = 7919  # a prime: consecutive records land in scattered slots
_SLOT_INVERSE = pow(_SLOT_STEP, -1, 1000)
_TAXON_SLOT_ARRAY = np.array(_TAXON_SLOTS, dtype=np.int64)

# Relations with a link name at each end: forward name -> (db a, db b, reverse name, kind).
# "partition": each b record has one a record (a gene's proteins); "human": the same over
# human genes only (dbSNP and ClinVar are human); "coding": over genes with proteins;
# "config": many-to-many over shared stubs.
_RELATIONS: dict[str, tuple[str, str, str, str]] = {
    # a gene's solved structures (no link name of its own; protein_structure reads it)
    "gene_structure": ("gene", "structure", "", "coding"),
    "gene_protein": ("gene", "protein", "protein_gene", "partition"),
    "gene_nuccore": ("gene", "nuccore", "nuccore_gene", "partition"),
    "gene_snp": ("gene", "snp", "snp_gene", "human"),
    "gene_clinvar": ("gene", "clinvar", "clinvar_gene", "human"),
    "gene_pubmed": ("gene", "pubmed", "pubmed_gene", "config"),
    "gene_homologene": ("gene", "homologene", "homologene_gene", "config"),
    "nuccore_pubmed": ("nuccore", "pubmed", "pubmed_nuccore", "config"),
    "nuccore_biosample": ("nuccore", "biosample", "biosample_nuccore", "config"),
    "nuccore_sra": ("nuccore", "sra", "sra_nuccore", "config"),
    "protein_pubmed": ("protein", "pubmed", "pubmed_protein", "config"),
    "protein_cdd": ("protein", "cdd", "cdd_protein", "config"),
    "snp_clinvar": ("snp", "clinvar", "clinvar_snp", "config"),
    "sra_biosample": ("sra", "biosample", "biosample_sra", "config"),
}
# link name -> (forward name of its relation, True when it is the forward end)
_SIDES: dict[str, tuple[str, bool]] = {
    **{fwd: (fwd, True) for fwd, rel in _RELATIONS.items() if rel[2]},
    **{rel[2]: (fwd, False) for fwd, rel in _RELATIONS.items() if rel[2]},
}
_SPEC: dict[str, LinkSpec] = {s.linkname: s for specs in CATALOG.values() for s in specs}
_SPEC["gene_structure"] = LinkSpec("gene_structure", "structure", 0.25, 2, cap=300)
# Records that belong to one gene, and the relation that says which.
_GENE_CHILDREN = {"protein": "gene_protein", "nuccore": "gene_nuccore", "snp": "gene_snp",
                  "structure": "gene_structure",
                  "clinvar": "gene_clinvar"}
_REFSEQ_LINKS = {"gene_protein_refseq": "gene_protein", "gene_nuccore_refseqrna": "gene_nuccore"}
# Reverse link names NCBI keeps for a forward one (what the coherence tests check).
REVERSE_LINKS: dict[str, str] = {
    **{fwd: rel[2] for fwd, rel in _RELATIONS.items() if rel[2]},
    **{rel[2]: fwd for fwd, rel in _RELATIONS.items() if rel[2]},
    "protein_structure": "structure_protein", "structure_protein": "protein_structure",
    "nuccore_protein": "protein_nuccore", "protein_nuccore": "nuccore_protein",
    "pubmed_pmc": "pmc_pubmed", "pmc_pubmed": "pubmed_pmc",
    "pubmed_pubmed": "pubmed_pubmed", "protein_protein": "protein_protein",
    **{f"{db}_taxonomy": f"taxonomy_{db}" for db in ("gene", "nuccore", "protein", "structure")},
    **{f"taxonomy_{db}": f"{db}_taxonomy" for db in ("gene", "nuccore", "protein", "structure")},
}
# Link names whose targets are a subset of another link name's targets of the same record.
SUBSET_LINKS: dict[str, str] = {
    "gene_protein_refseq": "gene_protein", "gene_nuccore_refseqrna": "gene_nuccore",
    "pubmed_pubmed_five": "pubmed_pubmed", "pubmed_pubmed_reviews": "pubmed_pubmed",
}
_PROTEIN_NAMES = {
    672: "breast cancer type 1 susceptibility protein",
    7157: "cellular tumor antigen p53",
    675: "breast cancer type 2 susceptibility protein",
    1956: "epidermal growth factor receptor",
    7124: "tumor necrosis factor",
}


def _human_first(db: str) -> int:
    """How many leading records of a database are human whatever their slot says (the
    well-known genes; index 0 of every other database, which is on BRCA1's chain)."""
    return len(_SPECIALS["gene"]) if db == "gene" else 1


def _pair_score(seed: int | None, db: str, i: int, j: int) -> int:
    """A similarity score that depends on the unordered pair: equal from both ends."""
    lo, hi = min(i, j), max(i, j)
    return 1_000_000 + _h(seed, "score", db, lo, hi) % 59_000_000


def _genbank(i: int, letters: int, digits: int) -> str:
    """A GenBank-style accession (AB123456, AAC12345) unique per index."""
    n, num = divmod(i, 10**digits)
    prefix = ""
    for _ in range(letters):
        n, r = divmod(n, 26)
        prefix = chr(65 + r) + prefix
    return f"{prefix}{num:0{digits}d}"


def _subset(linkname: str, parent: list[tuple[int, int]], i: int, seed: int
            ) -> list[tuple[int, int]]:
    """pubmed_pubmed_five: the top five; pubmed_pubmed_reviews: the parent's review articles."""
    if linkname.endswith("_five"):
        return parent[:5]
    return [(t, s) for t, s in parent if t != i and _h(seed, "review", t) % 6 == 0]


def _pdb_id(i: int) -> str:
    """A unique 4-character PDB ID per index; index 0 is 1JM7 (and 1JM7's own slot takes 1000)."""
    code = str(1 + (i // 36**3) % 9) + _b36(i % 36**3, 3)
    if i == 0:
        return "1JM7"
    if code == "1JM7":
        return "1000"
    return code
