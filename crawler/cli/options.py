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
    metavar="DIR",
    help="Store directory (journal and embedded graph).",
)

eutils_url_option = click.option(
    "--eutils-url",
    envvar="ENTREZ_GRAPH_EUTILS_URL",
    default=None,
    metavar="URL",
    help="E-utilities base URL (default NCBI's; point it at `entrez-graph emulate`).",
)

email_option = click.option(
    "--email", envvar="NCBI_EMAIL", default=None, metavar="ADDRESS",
    help="Contact e-mail sent to NCBI (NCBI_EMAIL)."
)

rps_option = click.option(
    "--rps",
    type=click.FloatRange(min=0.01),
    default=None,
    metavar="N",
    help="Requests per second (default 3, or 10 with NCBI_API_KEY).",
)


# One --format vocabulary (README, "Conventions"): every command that prints a list of rows
# offers all of ROW_FORMATS; one that prints a report (several parts) offers REPORT_FORMATS.
ROW_FORMATS = ("table", "tsv", "csv", "json")
REPORT_FORMATS = ("table", "json")
_FORMAT_HELP = {
    "table": "table (for people)", "tsv": "tsv", "csv": "csv (header row first)",
    "json": "json (for programs)",
}


class FormatChoice(click.Choice):
    """A --format choice that also takes old spellings (`text` for `table`), not shown."""

    def __init__(self, choices: tuple[str, ...], aliases: dict[str, str]) -> None:
        super().__init__(list(choices))
        self.aliases = aliases

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, str) and value.lower() in self.aliases:
            value = self.aliases[value.lower()]
        return super().convert(value, param, ctx)


def format_option(*choices: str, default: str = "table", aliases: dict[str, str] | None = None):
    """--format FORMAT with `choices` (ROW_FORMATS or REPORT_FORMATS), spelled the same on every
    command."""
    shown = ", ".join(_FORMAT_HELP.get(c, c) for c in choices)
    return click.option(
        "--format",
        "fmt",
        type=FormatChoice(choices, aliases or {}),
        default=default,
        show_default=True,
        metavar="FORMAT",
        help=f"Output format: {shown}.",
    )


def eutils_options(func):
    """--eutils-url, --email and --rps, for every command that talks to E-utilities."""
    for option in (rps_option, email_option, eutils_url_option):
        func = option(func)
    return func


# -- Neo4j: one rule for every command ------------------------------------------------------------
# Neo4j is used only when --neo4j URI is given on the command line. NEO4J_URI alone never sends a
# command to Neo4j (Neo4j's own tools read it too, so it is often set for other reasons); user,
# password and database may come from the environment.

NEO4J_HELP = {
    "uri": "Use Neo4j at this URI (bolt://host:7687, neo4j://…). Neo4j is used only when given.",
    "user": "Neo4j user (NEO4J_USER or NEO4J_USERNAME; default neo4j).",
    "password": "Neo4j password (NEO4J_PASSWORD, preferred: a command line is visible to "
    "other users; default entrez-graph).",
    "database": "Neo4j database (NEO4J_DATABASE; default: the server's default database).",
}


def neo4j_options(func):
    """--neo4j URI, --neo4j-user, --neo4j-password and --neo4j-database, spelled once."""
    options = (
        click.option("--neo4j-database", envvar="NEO4J_DATABASE", default=None, metavar="NAME",
                     help=NEO4J_HELP["database"]),
        click.option("--neo4j-password", envvar="NEO4J_PASSWORD", default=None,
                     metavar="PASSWORD", help=NEO4J_HELP["password"]),
        click.option("--neo4j-user", envvar=["NEO4J_USER", "NEO4J_USERNAME"], default=None,
                     metavar="USER", help=NEO4J_HELP["user"]),
        click.option("--neo4j", "neo4j_uri", default=None, metavar="URI",
                     help=NEO4J_HELP["uri"]),
    )
    for option in options:
        func = option(func)
    return func


def neo4j_config(
    neo4j_uri: str | None,
    neo4j_user: str | None = None,
    neo4j_password: str | None = None,
    neo4j_database: str | None = None,
):
    """The Neo4j configuration the options ask for, or None when --neo4j was not given.

    --neo4j-user / --neo4j-password / --neo4j-database typed on the command line without
    --neo4j are a mistake (they would be ignored): BadInput, one line, exit 2.
    """
    if not neo4j_uri:
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            typed = [
                f"--{name.replace('_', '-')}"
                for name in ("neo4j_user", "neo4j_password", "neo4j_database")
                if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
            ]
            if typed:
                from ..errors import BadInput

                raise BadInput(f"{', '.join(typed)} needs --neo4j URI (Neo4j is used only "
                               "when --neo4j is given)")
        return None
    from ..sinks.neo4j import Neo4jConfig  # lazy: only --neo4j needs the driver

    return Neo4jConfig.from_options(neo4j_uri, neo4j_user, neo4j_password, neo4j_database)
