"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import click

DEFAULT_STORE = "entrez-graph-store"

store_option = click.option(
    "--store",
    default=DEFAULT_STORE,
    show_default=True,
    envvar="ENTREZ_GRAPH_STORE",
    type=click.Path(file_okay=False),
    help="Store directory (journal and embedded graph).",
)

eutils_url_option = click.option(
    "--eutils-url",
    envvar="ENTREZ_GRAPH_EUTILS_URL",
    default=None,
    help="E-utilities base URL (default NCBI's; point it at `entrez-graph emulate`).",
)

email_option = click.option(
    "--email", envvar="NCBI_EMAIL", default=None, help="Contact e-mail sent to NCBI (NCBI_EMAIL)."
)

rps_option = click.option(
    "--rps",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Requests per second (default 3, or 10 with NCBI_API_KEY).",
)


def format_option(*choices: str, default: str = "table"):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format.",
    )


def eutils_options(func):
    """--eutils-url, --email and --rps, for every command that talks to E-utilities."""
    for option in (rps_option, email_option, eutils_url_option):
        func = option(func)
    return func
