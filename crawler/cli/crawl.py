"""`entrez-graph crawl`: a thin command over `crawler.crawling.api.crawl`.

Exit codes: 0 done (failed IDs are recorded and reported, not fatal); 1 E-utilities kept failing
(the journal keeps everything: run the same command again); 2 bad input, store locked, settings
mismatch, Neo4j unreachable at start; 3 the crawl finished but a sink (Neo4j, embedded store) is
missing rows (`entrez-graph sync` later); 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

from ..crawling.api import Neo4jTarget, crawl
from ..crawling.plan import describe_plan
from ..crawling.report import CrawlReport, describe, dumps
from ..crawling.settings import DEFAULT_BATCH, DEFAULT_DEPTH, stored_settings
from ..errors import BadInput
from ..progress import Progress
from ..seeds import parse_seeds, read_seed_lines
from . import LOG_LINES
from .options import (
    DEFAULT_STORE,
    REPORT_FORMATS,
    eutils_options,
    format_option,
    neo4j_config,
    neo4j_options,
)

EXIT_SINK_BEHIND = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM: stopped like Ctrl-C (journal committed, lock released, resumable), exit 143."""

    exit_code = 143
    signal_name = "SIGTERM"


def _stop(signum: int, frame: object) -> None:
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _handle_signals() -> dict[int, object]:
    """SIGINT and SIGTERM stop the crawl cleanly, as `emulate` does: also when a script started
    it in the background, where the shell leaves SIGINT ignored. Returns the old handlers."""
    old: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            old[signum] = signal.signal(signum, _stop)
    return old


def _added(stored: tuple[str, ...], given: tuple[str, ...]) -> tuple[str, ...]:
    """Named link names or databases add to the stored ones; none stored means every one, so
    naming some then is left for the engine to refuse as narrowing."""
    if stored or not given:
        return tuple(stored) + tuple(g for g in given if g not in stored)
    return given


class _Whole(click.ParamType):
    """A whole number >= minimum; anything else is BadInput (one line, exit 2)."""

    name = "N"

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                raise BadInput(f"invalid {param.opts[0]} {value!r}: expected a whole number")
            number = int(text)
        if number < self.minimum:
            raise BadInput(f"invalid {param.opts[0]} {number}: must be >= {self.minimum}")
        return number


@click.command("crawl")
@click.argument("seeds", nargs=-1)
@click.option("--seeds-file", metavar="FILE|-", help="Read more seeds from FILE (or stdin).")
@click.option("--query", metavar="TERM", help="Seed with the UIDs an ESearch query returns.")
@click.option("--query-db", metavar="DB", help="Database for --query.")
@click.option("--depth", type=_Whole(0), default=DEFAULT_DEPTH, show_default=True,
              help="Levels to expand; records at this depth are recorded, not expanded.")
@click.option("--link", "links", multiple=True, metavar="NAME",
              help="Follow only these link names (skips acheck). Repeatable.")
@click.option("--exclude-link", "exclude_links", multiple=True, metavar="NAME",
              help="Never follow this link name. Repeatable.")
@click.option("--db", "to_dbs", multiple=True, metavar="DB",
              help="Follow only links into records of this database (as export --db and "
                   "summarize --db keep only its records). Repeatable.")
# the old spelling, kept working but not shown
@click.option("--to", "to_dbs_old", multiple=True, metavar="DB", hidden=True)
@click.option("--max-nodes", type=_Whole(1), default=None, metavar="N",
              help="Stop admitting new records at this many (deterministic order).")
@click.option("--max-links-per-record", type=_Whole(1), default=None, metavar="N",
              help="Keep the top N links per record and link name (by score, then UID).")
@click.option("--scores", is_flag=True,
              help="Fetch computed neighbours (pubmed_pubmed, …) with neighbor_score scores.")
@click.option("--expand-hubs", is_flag=True,
              help="Also expand hub databases (taxonomy, cdd, …); recorded only by default.")
@click.option("--include-subsets", is_flag=True,
              help="Also follow subset link names (pubmed_pubmed_five, …) next to their parent.")
@click.option("--batch-size", type=_Whole(1), default=DEFAULT_BATCH, show_default=True,
              help="IDs per request (at most 500).")
@click.option("--discovery", type=click.Choice(["acheck", "all"]), default="acheck",
              show_default=True,
              help="How link names are learnt: acheck, then one neighbor request per link name "
                   "and batch; or all: one cmd=neighbor&db=all request per batch (same graph).")
@click.option("--workers", type=_Whole(1), default=None,
              help="Requests in flight (the rate limit still applies). Default: the allowed "
                   "rate × the latency observed × 1.5, at most 64 (12 above 100/s).")
@click.option("--summaries", is_flag=True,
              help="After the crawl, fetch names and other properties with ESummary.")
# Like options.store_option, but checked by the engine so a bad path is one line, exit 2.
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="ENTREZ_GRAPH_STORE",
              metavar="PATH",
              help="Store directory (journal and embedded graph).")
@neo4j_options
@click.option("--no-embedded", is_flag=True, help="Do not write the embedded store.")
@eutils_options
@click.option("--dry-run", is_flag=True, help="Print the plan and an estimate; write nothing.")
@click.option("--switch-endpoint", is_flag=True,
              help="Resume a store against another --eutils-url than it was crawled from.")
@click.option("--retry-failed", is_flag=True,
              help="Ask again for records and links that failed or went unanswered.")
@click.option("--refresh", metavar="AGE",
              help="Ask again for what was fetched longer ago than AGE (30d, 12h, 2w; 0s: "
                   "everything): new links are added, links NCBI no longer returns removed.")
@format_option(*REPORT_FORMATS, aliases={"text": "table"})
def command(
    seeds: tuple[str, ...], seeds_file: str | None, query: str | None, query_db: str | None,
    depth: int, links: tuple[str, ...], exclude_links: tuple[str, ...], to_dbs: tuple[str, ...],
    to_dbs_old: tuple[str, ...], max_nodes: int | None, max_links_per_record: int | None,
    scores: bool, expand_hubs: bool,
    include_subsets: bool, batch_size: int, discovery: str, workers: int | None,
    summaries: bool, store: str,
    neo4j_uri: str | None, neo4j_user: str | None, neo4j_password: str | None,
    neo4j_database: str | None, no_embedded: bool, eutils_url: str | None, email: str | None,
    rps: float | None, dry_run: bool, switch_endpoint: bool, retry_failed: bool,
    refresh: str | None, fmt: str,
) -> None:
    """Crawl ELink cross-references breadth-first from SEEDS (db:uid or db:accession).

    Running the same command again on the same --store resumes an unfinished crawl
    (so does `crawl --store PATH` with no seeds: it takes the stored settings).
    On a store that holds a crawl, options not given keep their stored values and SEEDS are
    added to the stored ones; wider options (a larger --depth, more --link names, …) grow the
    crawl, asking NCBI only for what the store does not know.

    \b
    Examples:
      entrez-graph crawl gene:672 --depth 2 --store brca1
      entrez-graph crawl gene:672 --link gene_protein_refseq --link protein_structure --depth 2
      entrez-graph crawl nuccore:NM_007294 --db protein --db structure --store brca1-seq
      entrez-graph crawl --query 'BRCA1[gene] AND human[orgn]' --query-db gene --dry-run
      entrez-graph crawl --store brca1              # resume with the stored settings
      entrez-graph crawl --store brca1 --depth 3    # grow it one level deeper
      entrez-graph crawl --store brca1 gene:675     # add a seed
      entrez-graph crawl --store brca1 --refresh 30d
    """
    to_dbs = to_dbs + to_dbs_old
    all_seeds = list(seeds)
    if seeds_file:
        all_seeds += read_seed_lines(seeds_file)
    # On a stored crawl, what is not given keeps its stored value and seeds add to the stored
    # ones: `crawl --store S` resumes it, `crawl --store S --depth 3` grows it (the engine
    # refuses what would narrow it).
    stored = stored_settings(store)
    if stored is not None:
        ctx = click.get_current_context()

        def given(name: str) -> bool:
            return ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT

        known = set(stored.seed_specs)
        all_seeds = list(stored.seed_specs) + [
            spec for spec in (str(s) for s in parse_seeds(all_seeds)) if spec not in known
        ]
        if query is None and query_db is None:
            query, query_db = stored.query, stored.query_db
        flt = stored.filter
        depth = depth if given("depth") else stored.depth
        links = _added(flt.links, links)
        to_dbs = _added(flt.to_dbs, to_dbs)
        exclude_links = exclude_links if given("exclude_links") else flt.exclude
        include_subsets = include_subsets or flt.include_subsets
        max_nodes = max_nodes if given("max_nodes") else stored.max_nodes
        if not given("max_links_per_record"):
            max_links_per_record = stored.max_links_per_record
        scores = scores or stored.scores
        expand_hubs = expand_hubs or stored.expand_hubs
    neo4j = None
    if config := neo4j_config(neo4j_uri, neo4j_user, neo4j_password, neo4j_database):
        neo4j = Neo4jTarget(config.uri, config.user, config.password, config.database)
    old_handlers = _handle_signals()
    progress = Progress(sys.stderr)
    LOG_LINES.note = progress.note  # warnings (retries, …) above the live progress line
    try:
        result = crawl(
            store, all_seeds, query=query, query_db=query_db, depth=depth, links=links,
            exclude_links=exclude_links, to_dbs=to_dbs, max_nodes=max_nodes,
            max_links_per_record=max_links_per_record, scores=scores, expand_hubs=expand_hubs,
            include_subsets=include_subsets, batch_size=batch_size, summaries=summaries,
            embedded=not no_embedded, neo4j=neo4j, eutils_url=eutils_url, email=email, rps=rps,
            dry_run=dry_run, retry_failed=retry_failed, workers=workers, discovery=discovery,
            progress=progress, switch_endpoint=switch_endpoint, refresh=refresh,
        )
    finally:
        LOG_LINES.note = None
        progress.close()
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
    if fmt == "json":  # `--format text` is the old spelling of table
        click.echo(dumps(result))
    elif isinstance(result, CrawlReport):
        click.echo(describe(result))
    else:
        click.echo(describe_plan(result))
    if isinstance(result, CrawlReport) and not result.sinks_ok:
        sys.exit(EXIT_SINK_BEHIND)
