"""One Neo4j rule in every command: Neo4j only with --neo4j URI (NEO4J_URI alone never reaches
Neo4j); the same --neo4j-user / --neo4j-password / --neo4j-database everywhere; NEO4J_USERNAME
accepted beside NEO4J_USER. Against the stand-in in tests/neo4j_fake.py and the emulator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from neo4j_fake import FakeNeo4j, install

from crawler.cli import main
from crawler.cli.options import NEO4J_HELP
from crawler.emulator import Emulator, World

URI = "bolt://localhost:7687"
COMMANDS = ("crawl", "summarize", "sync", "query", "status")
QUERY = "MATCH (g:gene) RETURN count(g) AS n"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeNeo4j:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    monkeypatch.setenv("NCBI_EMAIL", "t@example.org")
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    return install(monkeypatch)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(World.generate(seed=5, size=200)) as server:
        yield server


def args_for(command: str, store: Path, emu: Emulator) -> list[str]:
    """Each command doing its ordinary work on `store` (which a crawl filled)."""
    return {
        "crawl": ["crawl", "gene:672", "--depth", "1", "--rps", "1000", "--eutils-url", emu.url],
        "summarize": ["summarize", "--rps", "1000", "--eutils-url", emu.url],
        "sync": ["sync", "--embedded"],
        "query": ["query", QUERY],
        "status": ["status"],
    }[command] + ["--store", str(store)]


@pytest.fixture(scope="module")
def crawled(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small crawl (no Neo4j) copied for each test."""
    path = tmp_path_factory.mktemp("crawled") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENTREZ_GRAPH_RATE_DIR", str(path.parent / "rate"))
        mp.delenv("NEO4J_URI", raising=False)
        result = CliRunner().invoke(main, args_for("crawl", path, emu),
                                    env={"NCBI_EMAIL": "t@example.org"})
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def store(fake: FakeNeo4j, crawled: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(crawled, path)
    fake.canned[QUERY] = (["n"], [[1]])  # what `query --neo4j` asks the stand-in
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_the_same_neo4j_options(command: str) -> None:
    cmd = main.commands[command]
    options = {opt: p for p in cmd.params for opt in p.opts}
    for flag, key in (("--neo4j", "uri"), ("--neo4j-user", "user"),
                      ("--neo4j-password", "password"), ("--neo4j-database", "database")):
        assert flag in options, f"{command} lacks {flag}"
        assert options[flag].help == NEO4J_HELP[key]
    assert options["--neo4j"].envvar is None  # the rule: Neo4j only when --neo4j is given
    assert options["--neo4j-user"].envvar == ["NEO4J_USER", "NEO4J_USERNAME"]
    assert options["--neo4j"].metavar == "URI"
    help_text = CliRunner().invoke(main, [command, "--help"]).output
    assert "--neo4j URI" in help_text and "--neo4j-database NAME" in help_text


@pytest.mark.parametrize("command", COMMANDS)
def test_neo4j_uri_in_the_environment_alone_never_reaches_neo4j(
    command: str, fake: FakeNeo4j, store: Path, emu: Emulator
) -> None:
    result = CliRunner().invoke(main, args_for(command, store, emu),
                                env={"NEO4J_URI": URI, "NEO4J_USERNAME": "alice"})
    assert result.exit_code == 0, result.output
    assert fake.configs == [] and fake.transactions == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_neo4j_options_and_variables_alike_in_every_command(
    command: str, fake: FakeNeo4j, store: Path, emu: Emulator
) -> None:
    runner = CliRunner()
    base = args_for(command, store, emu)
    env = {"NEO4J_USERNAME": "alice", "NEO4J_PASSWORD": "pw-1", "NEO4J_DATABASE": "graphs",
           "NEO4J_USER": None, "NEO4J_URI": None}
    result = runner.invoke(main, [*base, "--neo4j", URI], env=env)
    assert result.exit_code == 0, result.output
    config = fake.configs[-1]
    assert (config.uri, config.user, config.password, config.database) == (
        URI, "alice", "pw-1", "graphs")
    assert {s["database"] for s in fake.sessions} == {"graphs"}
    assert "pw-1" not in result.output

    result = runner.invoke(main, [*base, "--neo4j", URI, "--neo4j-user", "bob",
                                  "--neo4j-password", "pw-2", "--neo4j-database", "other"],
                           env={**env, "NEO4J_USER": "carol"})
    assert result.exit_code == 0, result.output
    config = fake.configs[-1]
    assert (config.user, config.password, config.database) == ("bob", "pw-2", "other")
    result = runner.invoke(main, [*base, "--neo4j", URI], env={**env, "NEO4J_USER": "carol"})
    assert fake.configs[-1].user == "carol"  # NEO4J_USER first, then NEO4J_USERNAME


@pytest.mark.parametrize("command", COMMANDS)
def test_neo4j_settings_without_neo4j_are_bad_input(
    command: str, fake: FakeNeo4j, store: Path, emu: Emulator
) -> None:
    result = CliRunner().invoke(main, [*args_for(command, store, emu), "--neo4j-user", "bob"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["Error: --neo4j-user needs --neo4j URI (Neo4j is used only when --neo4j is "
                     "given)"]
    assert fake.configs == []
