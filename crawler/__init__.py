"""entrez-graph: crawl NCBI Entrez cross-references breadth-first into a graph database."""

from __future__ import annotations

__version__ = "0.1.0"
