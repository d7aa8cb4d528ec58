"""Compatibility: the crawl engine now lives in `crawler.crawling` (scheduler, pipeline,
committer, plan, settings, …); these names are re-exported for code that imports them here."""

from __future__ import annotations

from .crawling.api import Neo4jTarget, connect_neo4j, crawl, open_sinks
from .crawling.committer import Committer
from .crawling.crawler import TRANSIENT_ROUNDS, Crawler
from .crawling.lock import LOCK_FILE, StoreLock, check_store_path
from .crawling.pipeline import Client, Pipeline
from .crawling.plan import ASSUMED_FANOUT, ASSUMED_LINKNAMES, Plan, describe_plan, make_plan
from .crawling.report import CrawlReport, SinkStatus, describe, dumps
from .crawling.scheduler import Scheduler
from .crawling.settings import (
    DEFAULT_BATCH,
    DEFAULT_DEPTH,
    MAX_BATCH,
    MAX_COUNT,
    SETTINGS_VERSION,
    CrawlSettings,
    build_settings,
    stored_settings,
)

__all__ = [
    "ASSUMED_FANOUT", "ASSUMED_LINKNAMES", "DEFAULT_BATCH", "DEFAULT_DEPTH",
    "LOCK_FILE", "MAX_BATCH", "MAX_COUNT", "SETTINGS_VERSION", "TRANSIENT_ROUNDS", "Client",
    "Committer", "CrawlReport", "CrawlSettings", "Crawler", "Neo4jTarget", "Pipeline", "Plan",
    "Scheduler", "SinkStatus", "StoreLock", "build_settings", "check_store_path", "connect_neo4j",
    "crawl", "describe", "describe_plan", "dumps", "make_plan", "open_sinks", "stored_settings",
]
