"""The `entrez-graph` command line: thin click commands over Python functions of the same names.

Every module in this package except `options` defines one click command named `command`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from ..errors import EntrezGraphError

_NOT_COMMANDS = {"options"}


class _Group(click.Group):
    """Turns our own errors into one line on stderr and their exit code, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EntrezGraphError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; run the same command again to resume.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="entrez-graph")
def main() -> None:
    """Crawl NCBI Entrez cross-references (ELink) into a graph database."""


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        main.add_command(module.command)


_register()
