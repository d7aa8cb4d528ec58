"""Seeds: parsing `db:uid` / `db:identifier`, reading seed files, resolving through ESearch.

A node's identity is (database, UID). Identifiers that are not UIDs (`nuccore:NM_007294`,
`pmc:PMC1234567`, `snp:rs80357906`, `structure:1JM7`) are resolved with one ESearch each in their
own database; a seed that matches no record or several is an error naming them, raised before any
link request is sent and before the store is touched.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import BadInput, NCBIError
from .eutils.models import SearchResult
from .linknames import check_db
from .names import check_token, check_uid, shorten

# ESearch field that names an identifier exactly, per database (NCBI's field tags). Elsewhere
# the identifier is searched in all fields, which is how NCBI resolves rs numbers (snp), PDB IDs
# (structure) and most accessions; a term matching several records is reported, never guessed.
_FIELDS: dict[str, str] = {
    "nuccore": "accn",
    "protein": "accn",
    "nucest": "accn",
    "nucgss": "accn",
    "ipg": "accn",
    "biosample": "accn",
    "sra": "accn",
    "pmc": "pmcid",
    "gene": "sym",
}
_SIGNED = re.compile(r"^[-+]\d*(\.\d*)?$|^\d*\.\d+$")  # -1, +5, 1.5: numbers, not UIDs
# How many UIDs a --query may bring in; beyond that the user should narrow the query.
QUERY_LIMIT = 100_000


class Searcher(Protocol):
    def esearch(self, db: str, term: str, retmax: int = 20) -> SearchResult: ...


@dataclass(frozen=True, slots=True)
class SeedSpec:
    """One seed as the user typed it: a database and a UID or an identifier to resolve."""

    db: str
    value: str

    @property
    def is_uid(self) -> bool:
        return self.value.isdigit()

    def __str__(self) -> str:
        return f"{self.db}:{self.value}"


def parse_seed(text: str) -> SeedSpec:
    """`db:uid` or `db:identifier`; the database must be a known Entrez database."""
    raw = text.strip()
    db, sep, value = raw.partition(":")
    if not sep or not db or not value:
        raise BadInput(
            f"invalid seed {shorten(text)!r}: expected DB:UID or DB:IDENTIFIER (e.g. gene:672, "
            "nuccore:NM_007294)"
        )
    shown = shorten(raw)
    if _SIGNED.match(value.strip()):
        raise BadInput(f"invalid UID {shorten(value.strip())!r} in seed {shown!r}: expected a "
                       "positive whole number")
    try:
        token = check_token(value)
    except BadInput:
        raise BadInput(f"invalid ID in seed {shown!r}: empty, or contains whitespace, "
                       "separators or control characters") from None
    if token.isascii() and token.isdigit():
        check_uid(token)  # "0" is what NCBI echoes for an invalid ID, never a record
    return SeedSpec(check_db(db, f"database in seed {shown!r}"), token)


def parse_seeds(texts: Iterable[str]) -> list[SeedSpec]:
    """Parsed seeds in order, duplicates dropped (a dict keeps the order: thousands of seeds
    are one pass, not a quadratic list search)."""
    out: dict[SeedSpec, None] = {}
    for t in texts:
        out.setdefault(parse_seed(t))
    return list(out)


def read_seed_lines(source: str) -> list[str]:
    """Seeds from a file (or `-` for stdin): whitespace/comma separated, `#` starts a comment.

    A UTF-8 byte order mark (Windows editors write one) is not part of the first seed."""
    try:
        text = (sys.stdin.read() if source == "-"
                else Path(source).read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise BadInput(f"cannot read seeds file {shorten(source)!r}: not UTF-8 text "
                       f"(byte {exc.start})") from None
    except OSError as exc:
        raise BadInput(f"cannot read seeds file {shorten(source)!r}: "
                       f"{exc.strerror or exc}") from None
    text = text.removeprefix("\ufeff")
    seeds: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        seeds.extend(tok for tok in line.replace(",", " ").split() if tok)
    return seeds


def search_term(spec: SeedSpec) -> str:
    """The ESearch term that finds the record an identifier names."""
    field = _FIELDS.get(spec.db)
    return f"{spec.value}[{field}]" if field else spec.value


def resolve_seeds(
    specs: Sequence[SeedSpec],
    client: Searcher | None,
    *,
    query: str | None = None,
    query_db: str | None = None,
) -> list[tuple[str, str]]:
    """(db, uid) seeds in order, duplicates dropped; BadInput names every seed that failed."""
    seeds: dict[tuple[str, str], None] = {}  # in order, duplicates dropped
    problems: list[str] = []

    def add(db: str, uid: str) -> None:
        seeds.setdefault((db, uid))

    for spec in specs:
        if spec.is_uid:
            add(spec.db, spec.value.lstrip("0"))  # parse_seed checked it is a positive UID
            continue
        if client is None:
            raise BadInput(f"seed {spec} needs an ESearch lookup, but no client was given")
        term = search_term(spec)
        try:
            found = client.esearch(spec.db, term, retmax=20)
        except NCBIError as exc:
            problems.append(f"{spec}: lookup failed ({exc})")
            continue
        if found.count == 0 or not found.ids:
            problems.append(f"{spec} matches no record ({term} in {spec.db})")
        elif found.count > 1 or len(found.ids) > 1:
            shown = ", ".join(found.ids[:10]) + (", …" if found.count > 10 else "")
            problems.append(
                f"{spec} matches {found.count} records ({shown}); give {spec.db}:UID instead"
            )
        else:
            add(spec.db, found.ids[0])

    if query is not None:
        if not query.strip():
            raise BadInput("--query is empty")
        if client is None:
            raise BadInput("--query needs an ESearch lookup, but no client was given")
        db = check_db(query_db or "", "database in --query-db")
        try:
            found = client.esearch(db, query, retmax=QUERY_LIMIT)
        except NCBIError as exc:
            raise BadInput(f"--query {query!r} in {db} failed: {exc}") from None
        if found.count == 0 or not found.ids:
            detail = "; ".join(found.errors) if found.errors else f"in {db}"
            problems.append(f"--query {query!r} matches no record ({detail})")
        elif found.count > len(found.ids):
            problems.append(
                f"--query {query!r} matches {found.count} records, more than {QUERY_LIMIT}; "
                "narrow it"
            )
        else:
            for uid in found.ids:
                add(db, uid)
    elif query_db is not None:
        raise BadInput("--query-db needs --query")

    if problems:
        raise BadInput("; ".join(problems))
    if not seeds:
        raise BadInput("no seeds: give DB:UID arguments, --seeds-file or --query")
    return list(seeds)
