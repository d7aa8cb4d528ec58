"""Validation of everything that can reach Cypher, DDL or a URL: database names, link names, UIDs.

Labels and relationship types are the only text ever placed into a query, so every one passes
`check_identifier` first; values always travel as parameters.
"""

from __future__ import annotations

import re

from .errors import BadInput

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
# An Entrez UID as ELink returns it, or an accession / search token given as a seed
# (NM_007294.4, PMC1234567, rs80357906, 1JM7): no whitespace, separators or control characters.
_UID = re.compile(r"^[0-9]+$")
MAX_UID_DIGITS = 18  # Entrez UIDs are far shorter; this keeps them 64-bit integers everywhere
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

DB_ALIASES = {"nucleotide": "nuccore"}


def shorten(text: object, limit: int = 60) -> str:
    """A value as an error message shows it: a long one cut, saying how long it was."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 24]}… ({len(text)} characters)"


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is safe as a label, relationship type or table name, else BadInput."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise BadInput(f"invalid {what} {shorten(name)!r}: must match ^[a-z][a-z0-9_]*$")
    return name


def normalize_db(db: str) -> str:
    """Validated database name with `nucleotide` folded into `nuccore` (the same records)."""
    raw = (db or "").strip().lower() if isinstance(db, str) else db
    db = check_identifier(raw, "database name")
    return DB_ALIASES.get(db, db)


def check_linkname(name: str) -> str:
    return check_identifier(name, "link name")


def check_uid(uid: str) -> str:
    """A numeric Entrez UID as a string."""
    uid = str(uid)
    if not _UID.match(uid) or not uid.strip("0"):
        raise BadInput(f"invalid UID {shorten(uid)!r}: expected a positive whole number")
    if len(uid.lstrip("0")) > MAX_UID_DIGITS:
        raise BadInput(f"invalid UID {shorten(uid)!r}: more than {MAX_UID_DIGITS} digits, "
                       "longer than any Entrez UID")
    return uid


def check_token(token: str, what: str = "ID") -> str:
    """An ID or accession as typed by a user: non-empty, no whitespace, separators or controls."""
    token = str(token)
    if not _TOKEN.match(token):
        raise BadInput(f"invalid {what} {shorten(token)!r}: empty, or contains whitespace, "
                       "separators or control characters")
    return token
