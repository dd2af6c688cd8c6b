"""The command line in-process (click's CliRunner, in-memory keyring): the fast cases.

The end-to-end runs of the real program against the real Secret Service are
in the other ``test_cli_*.py`` files; this one checks the command tree itself
(no option takes a secret, every listing has --json, every --help works),
exit codes and messages, and the --version / --help of the installed program.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.cli_support import Cli, new_sqlite_store, provider_args
from tests.keyring_backends import MemoryKeyring
from tui_oauth import __version__
from tui_oauth.cli import cli as root
from tui_oauth.cli.common import AppContext

Invoke = Callable[..., Result]


def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                           click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in sorted(cmd.list_commands(ctx)):  # loads the lazy ones
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name))


ALL = list(walk(root))
GROUPS = [p for p, c in ALL if isinstance(c, click.Group)]
LEAVES = [p for p, c in ALL if not isinstance(c, click.Group)]


@pytest.fixture
def invoke(tmp_path: Path, memory_keyring: MemoryKeyring) -> Invoke:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    new_sqlite_store(url)

    def run(*args: str, input: str | None = None, rc: int = 0,
            read_only: bool = False) -> Result:
        obj = AppContext(db=None, read_only=read_only, secrets_backend=memory_keyring)
        result = CliRunner().invoke(root, ["--db", url, *args], obj=obj, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == rc, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


# ---------------------------------------------------------------- the command tree


def test_tree_has_every_documented_command() -> None:
    assert set(LEAVES) >= {
        ("consumers", "list"), ("consumers", "show"), ("consumers", "add"),
        ("consumers", "edit"), ("consumers", "remove"),
        ("info", "show"), ("info", "edit"), ("info", "export"), ("info", "rotate-key"),
        ("providers", "list"), ("providers", "show"), ("providers", "add"),
        ("providers", "edit"), ("providers", "remove"),
        ("audit", "list"), ("doctor",), ("db", "upgrade"),
    }


def test_no_option_takes_a_secret_as_an_argument() -> None:
    words = ("secret", "password", "passphrase", "private")
    for path, cmd in ALL:
        for param in cmd.params:
            names = [param.name or "", *param.opts, *param.secondary_opts]
            if not any(w in n.lower() for n in names for w in words):
                continue
            where = f"{' '.join(path)} {param.opts}"
            assert isinstance(param, click.Option), f"{where} is an argument"
            # A flag, or the path of a file holding it (--secret-file, --passphrase-file).
            assert param.is_flag or all(o.endswith("-file") for o in param.opts), \
                f"{where} takes a value"


@pytest.mark.parametrize("path", [("consumers", "add"), ("consumers", "edit"),
                                  ("providers", "add"), ("providers", "edit")])
def test_secret_inputs_are_stdin_and_file(path: tuple[str, ...]) -> None:
    cmd = dict(ALL)[path]
    opts = {o for p in cmd.params for o in p.opts}
    assert {"--secret-stdin", "--secret-file"} <= opts


def test_every_listing_and_show_has_the_output_options() -> None:
    """-o table|json|jsonl|name, --json and -q on every listing and show."""
    for path, cmd in ALL:
        if (path and path[-1] in ("list", "show")) or path in (("doctor",),
                                                               ("providers", "tokens")):
            opts = {o for p in cmd.params for o in p.opts}
            assert {"--json", "-o", "--output", "-q", "--quiet"} <= opts, path


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "root")
def test_every_help_ends_with_examples(path: tuple[str, ...]) -> None:
    """The last section of every --help is Examples:, each line a tui-oauth command
    (or its continuation), kept as written."""
    result = CliRunner().invoke(root, [*path, "--help"], prog_name="tui-oauth")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\n  Examples:\n\n" in out, out
    after = out.split("\n  Examples:\n\n", 1)[1]
    assert "Options:" not in after and "Commands:" not in after, out
    assert any(line.strip().startswith(("tui-oauth", "for ", "KEY=", "bash:", "TUI_OAUTH"))
               for line in after.splitlines()), out


def test_destructive_commands_have_yes() -> None:
    for path in [("consumers", "remove"), ("providers", "remove"), ("info", "rotate-key"),
                 ("consumers", "add"), ("doctor",)]:
        assert any("--yes" in p.opts for p in dict(ALL)[path].params), path


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "root")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(root, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- the installed program


def test_version_and_root_help_subprocess() -> None:
    run = Cli(None, subprocess=True)
    assert run("--version").stdout.strip() == f"tui-oauth, version {__version__}"
    out = run("--help").stdout
    for group in ("consumers", "info", "providers", "audit", "doctor", "db"):
        assert group in out
    assert "TUI_OAUTH_DB" in out


@pytest.mark.parametrize("group", [" ".join(p) for p in GROUPS if p])
def test_help_of_every_group_subprocess(group: str) -> None:
    result = Cli(None)(*group.split(), "--help")
    cmd = dict(ALL)[tuple(group.split())]
    assert isinstance(cmd, click.Group)
    for name in cmd.commands:
        assert name in result.stdout
    assert result.stderr == ""


def test_console_needs_a_terminal(tmp_path: Path) -> None:
    """Without a command the console opens, but not on a pipe (it would hang)."""
    r = Cli(f"sqlite:///{tmp_path / 'c.db'}", subprocess=True)(rc=2, timeout=20)
    assert "The console needs a terminal" in r.stderr and r.stdout == ""


def test_usage_errors_exit_2_subprocess(tmp_path: Path) -> None:
    run = Cli(f"sqlite:///{tmp_path / 'u.db'}", subprocess=True)
    r = run("consumers", "list", "--bogus", rc=2)
    assert "No such option '--bogus'" in r.stderr and r.stdout == ""
    r = run("consumers", "show", rc=2)
    assert "Missing argument 'KEY'" in r.stderr
    r = run("providers", "remove", rc=2)
    assert "Missing argument 'NAME'" in r.stderr
    r = run("nosuchgroup", rc=2)
    assert "No such command 'nosuchgroup'" in r.stderr


# ---------------------------------------------------------------- exit codes, in-process


def test_usage_errors_exit_2(invoke: Invoke, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin",
               "--secret-file", str(secret), input="s\n", rc=2)
    assert "not both" in r.stderr
    r = invoke("consumers", "list", "--sort", "colour", rc=2)
    assert "--sort" in r.stderr
    r = invoke("consumers", "edit", "k", rc=2)
    assert "Nothing to change" in r.stderr
    r = invoke("providers", "add", "--name", "p", rc=2)
    assert "--consumer-key" in r.stderr and "--access-token-url" in r.stderr
    r = invoke("info", "edit", rc=2)
    assert "Nothing to change" in r.stderr
    r = invoke("audit", "--limit", "0", rc=2)
    assert "--limit" in r.stderr


def test_user_errors_are_one_line_prefixed_error(invoke: Invoke, tmp_path: Path) -> None:
    r = invoke("consumers", "show", "nope", rc=1)
    assert r.stderr.startswith("error: No consumer with key 'nope'.")
    assert len(r.stderr.splitlines()) == 1 and r.stdout == ""
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--callback", "ftp://x",
               "--secret-stdin", input="s\n", rc=1)
    assert r.stderr.startswith("error: --callback: ")
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin", input="\n",
               rc=1)
    assert r.stderr == ("error: --secret-stdin: the input is empty; the shared secret must be "
                        "on its first line.\n")
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--secret-file",
               str(tmp_path / "missing"), rc=1)
    assert r.stderr.startswith("error: --secret-file: cannot read ")


def test_show_public_key_of_an_hmac_consumer(invoke: Invoke) -> None:
    invoke("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin", input="s\n")
    r = invoke("consumers", "show", "k", "--public-key", rc=1)
    assert r.stderr == "error: Consumer 'k' has no public key.\n" and r.stdout == ""


def test_validation_names_each_flag(invoke: Invoke, tmp_path: Path) -> None:
    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key\n")
    r = invoke("consumers", "add", "--key", "k", "--name", "", "--public-key-file",
               str(garbage), "--callback", "nope", rc=1)
    flags = [line.split(":")[1].strip() for line in r.stderr.splitlines()]
    assert {"--name", "--public-key-file", "--callback"} <= set(flags), r.stderr
    r = invoke("providers", "add", *provider_args("p", scheme="ftp"), "--secret-stdin",
               input="s\n", rc=1)
    assert r.stderr.startswith("error: --request-token-url: ")
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--execute-as", "bob",
               "--secret-stdin", input="s\n", rc=1)
    assert r.stderr.startswith("error: --execute-as: ")


def test_hmac_consumer_without_secret_points_at_the_secret_flags(invoke: Invoke) -> None:
    r = invoke("consumers", "add", "--key", "k", "--name", "K", "--signature-method",
               "HMAC-SHA1", rc=1)
    assert r.stderr.startswith("error: --secret-stdin/--secret-file: ")


def test_confirmation_refused_without_a_terminal(invoke: Invoke,
                                                 memory_keyring: MemoryKeyring) -> None:
    invoke("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin", input="s3\n")
    r = invoke("consumers", "remove", "k", rc=1)
    assert r.stderr.startswith("error: Remove consumer 'k' (K) and its 0 token(s)")
    assert "--yes" in r.stderr
    assert json.loads(invoke("consumers", "list", "--json").stdout)[0]["key"] == "k"
    assert "s3" in memory_keyring.items.values()
    r = invoke("consumers", "remove", "k", "--yes")
    assert r.stdout == "Removed consumer 'k' and 0 token(s).\n"
    assert "s3" not in memory_keyring.items.values()


def test_read_only_refuses_changes(invoke: Invoke) -> None:
    invoke("providers", "add", *provider_args("p"), "--secret-stdin", input="s\n")
    r = invoke("providers", "edit", "p", "--description", "x", read_only=True, rc=1)
    assert r.stderr == ("error: This store is open read-only. Start without --read-only to "
                        "change it.\n")
    r = invoke("db", "upgrade", read_only=True, rc=1)
    assert r.stderr.startswith("error: db upgrade changes the schema")
    r = invoke("providers", "list", "--json", read_only=True)
    assert [p["name"] for p in json.loads(r.stdout)] == ["p"]


def test_info_export_refuses_to_overwrite(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "ci.xml"
    out.write_text("keep me")
    r = invoke("info", "export", "-o", str(out), rc=1)
    assert r.stderr.startswith(f"error: --output: {out} exists; add --force")
    assert out.read_text() == "keep me"
    invoke("info", "export", "-o", str(out), "--force")
    assert out.read_bytes().startswith(b"<?xml")


def test_secret_file_first_line_only(invoke: Invoke, tmp_path: Path,
                                     memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "secret"
    path.write_text("line-one\r\nline-two\n")
    invoke("providers", "add", *provider_args("p"), "--secret-file", str(path))
    assert "line-one" in memory_keyring.items.values()
    assert not any("line-two" in v for v in memory_keyring.items.values())


def test_commands_load_lazily_and_the_root_help_matches_them() -> None:
    """`--version`, `--help` and `keyring ...` import no command module and no database
    layer (half a second a run); each command is imported when it runs."""
    import subprocess
    import sys

    from tui_oauth.cli import LAZY_COMMANDS

    probe = ("import sys; from tui_oauth.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'cryptography', 'tui_oauth.cli."
             "consumers') if m in sys.modules]\nprint('HEAVY', heavy)")
    for args in (["--version"], ["--help"], ["keyring", "--help"]):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                             text=True, check=True, timeout=30).stdout
        assert "HEAVY []" in out, (args, out)
    ctx = click.Context(root)
    for name, (_module, _attr, help_text) in LAZY_COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command is not None and command.name in (name, "keyring_group")
        assert help_text and help_text[0].isupper()
    assert sorted(root.list_commands(ctx)) == sorted(LAZY_COMMANDS)
