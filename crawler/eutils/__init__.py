"""NCBI E-utilities: the client (HTTP, rate limit, retries) and typed, parsed results."""

from __future__ import annotations

from .client import NCBI_EUTILS, EutilsClient
from .models import ELINK_CMDS, BatchOutcome, DocSummary, ELinkResult, IdLinkSet, LinkSet
from .ratelimit import RateLimiter
from .redact import redact

__all__ = [
    "ELINK_CMDS",
    "NCBI_EUTILS",
    "BatchOutcome",
    "DocSummary",
    "ELinkResult",
    "EutilsClient",
    "IdLinkSet",
    "LinkSet",
    "RateLimiter",
    "redact",
]
