"""`entrez-graph demo`: a thin command over `crawler.showcase.demo` (offline, in-process)."""

from __future__ import annotations

import sys

import click

from ..progress import Progress


@click.command("demo")
@click.option(
    "--store",
    default=None,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Keep the demo graph in this store directory (default: a temporary one, removed).",
)
def command(store: str | None) -> None:
    """Crawl BRCA1 (gene:672) from a local emulator and print three bundled queries: no network.

    \b
    Examples:
      entrez-graph demo
      entrez-graph demo --store demo-store && entrez-graph query --store demo-store top_hubs
    """
    from ..showcase import demo

    progress = Progress(sys.stderr)
    try:
        demo(store, echo=click.echo, progress=progress)
    finally:
        progress.close()
