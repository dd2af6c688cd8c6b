"""contrib/tui-oauth-serve.service (issue 11): the systemd unit for `tui-oauth serve`, and
`serve`'s options read from TUI_OAUTH_SERVE_* environment variables (as the unit's
EnvironmentFile= sets them), a flag winning over its variable.

`systemd-analyze verify` checks the unit where systemd-analyze is installed (make test
installs it: scripts/system-deps.sh); the required settings are checked everywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from tests.cli_support import Cli, base_env
from tests.helpers import stop_process
from tui_oauth.cli import cli as root
from tui_oauth.cli.serve import serve

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "tui-oauth-serve.service"
ENV_FILE = REPO / "contrib" / "tui-oauth-serve.env"

#: Each visible option of serve: (its variable, a value, what click makes of it).
VALUES: dict[str, tuple[str, str, object]] = {
    "listen": ("TUI_OAUTH_SERVE_LISTEN", "0.0.0.0:9000", "0.0.0.0:9000"),
    "public_url": ("TUI_OAUTH_SERVE_PUBLIC_URL", "https://oauth.example.com/jira",
                   "https://oauth.example.com/jira"),
    "trusted_user_header": ("TUI_OAUTH_SERVE_TRUSTED_USER_HEADER", "X-Remote-User",
                            "X-Remote-User"),
    "header_timeout": ("TUI_OAUTH_SERVE_HEADER_TIMEOUT", "2.5", 2.5),
    "max_connections": ("TUI_OAUTH_SERVE_MAX_CONNECTIONS", "100", 100),
    "log_level": ("TUI_OAUTH_SERVE_LOG_LEVEL", "debug", "debug"),
    "workers": ("TUI_OAUTH_SERVE_WORKERS", "3", 3),
}
#: The same options given as flags, with other values.
FLAGS: dict[str, tuple[list[str], object]] = {
    "listen": (["--listen", "127.0.0.1:9001"], "127.0.0.1:9001"),
    "public_url": (["--public-url", "https://other.example.com"], "https://other.example.com"),
    "trusted_user_header": (["--trusted-user-header", "X-User"], "X-User"),
    "header_timeout": (["--header-timeout", "7"], 7.0),
    "max_connections": (["--max-connections", "200"], 200),
    "log_level": (["--log-level", "warning"], "warning"),
    "workers": (["--workers", "2"], 2),
}


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) in order (keys repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"a setting outside any section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def visible_options() -> list[click.Option]:
    return [p for p in serve.params if isinstance(p, click.Option) and not p.hidden]


# The unit file --------------------------------------------------------------------


def test_the_unit_runs_serve_as_its_own_user_hardened() -> None:
    unit = parse_unit(UNIT.read_text())
    service = unit["Service"]
    (exec_start,) = values(service, "ExecStart")
    argv = exec_start.split()
    assert argv[0].startswith("/") and argv[0].endswith("/tui-oauth") and argv[1] == "serve"
    assert values(service, "User") == ["tui-oauth"] or values(service, "DynamicUser") == ["yes"]
    # The keyring passphrase comes as a credential, and tui-oauth is told where it is.
    (credential,) = values(service, "LoadCredential")
    name, _, source = credential.partition(":")
    assert source.startswith("/etc/")
    assert f"TUI_OAUTH_KEYRING_PASSPHRASE_FILE=%d/{name}" in values(service, "Environment")
    assert values(service, "StateDirectory") == ["tui-oauth"]
    assert any(v.endswith("/etc/tui-oauth/serve.env") for v in values(service, "EnvironmentFile"))
    assert values(service, "Restart") == ["on-failure"]
    for key, wanted in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                        ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                        ("CapabilityBoundingSet", ""),
                        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")]:
        assert values(service, key) == [wanted], (key, values(service, key))
    assert "@system-service" in values(service, "SystemCallFilter")
    assert values(unit["Install"], "WantedBy") == ["multi-user.target"]


def test_the_environment_file_names_every_serve_option_and_the_store() -> None:
    text = ENV_FILE.read_text()
    for option in visible_options():
        assert isinstance(option.envvar, str), option.name
        assert option.envvar in text, option.envvar
    assert "TUI_OAUTH_DB=" in text
    for raw in text.splitlines():  # systemd reads NAME=value lines, no shell syntax
        line = raw.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name.startswith("TUI_OAUTH_") and " " not in name, raw
            assert not value.startswith(("'", '"')), raw


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("TUI_OAUTH_TEST_SERVICES"):
            pytest.fail("systemd-analyze is missing: make test installs it "
                        "(scripts/system-deps.sh test)")
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify wants ExecStart's program to exist: this venv's tui-oauth stands in for
    # /opt/tui-oauth/bin/tui-oauth.
    exe = Path(sys.executable).parent / "tui-oauth"
    assert exe.is_file(), exe
    text = UNIT.read_text()
    assert "ExecStart=/opt/tui-oauth/bin/tui-oauth serve" in text
    text = text.replace("ExecStart=/opt/tui-oauth/bin/tui-oauth", f"ExecStart={exe}")
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    done = _verify(unit)
    assert done.returncode == 0 and UNIT.name not in done.stderr + done.stdout, (
        done.stdout + done.stderr)
    # ... and it would say so: a misspelt key and a bad value are reported.
    broken = tmp_path / "broken" / UNIT.name
    broken.parent.mkdir()
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=stricter")
                      .replace("NoNewPrivileges=", "NoNewPrivilege="))
    done = _verify(broken)
    said = done.stdout + done.stderr
    assert "stricter" in said and "NoNewPrivilege" in said, said


# serve's options from the environment --------------------------------------------


def test_every_visible_serve_option_has_its_environment_variable() -> None:
    options = visible_options()
    assert {o.name for o in options} == set(VALUES)
    for option in options:
        assert option.name is not None
        assert option.envvar == "TUI_OAUTH_SERVE_" + option.name.upper(), option.name
        assert option.show_envvar, option.name
    help_text = CliRunner().invoke(root, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for variable, _, _ in VALUES.values():
        assert variable in help_text, variable


def test_each_serve_option_is_read_from_its_variable_and_a_flag_wins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = serve.make_context("serve", []).params
    for variable, raw, _ in VALUES.values():
        monkeypatch.setenv(variable, raw)
    from_env = serve.make_context("serve", []).params
    for name, (_, _, wanted) in VALUES.items():
        assert from_env[name] == wanted, (name, from_env[name])
        assert defaults[name] != wanted, name
    for name, (argv, wanted) in FLAGS.items():
        params = serve.make_context("serve", list(argv)).params
        assert params[name] == wanted, (name, params[name])
        others = {n for n in VALUES if n != name}
        assert all(params[n] == from_env[n] for n in others), name
    # An empty variable counts as unset (an EnvironmentFile line left blank).
    monkeypatch.setenv("TUI_OAUTH_SERVE_LISTEN", "")
    assert serve.make_context("serve", []).params["listen"] == defaults["listen"]


def test_a_bad_value_in_a_variable_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(root, ["--db", "sqlite:///nowhere/s.db", "serve"],
                                env={"TUI_OAUTH_SERVE_WORKERS": "many"})
    assert result.exit_code == 2, result.output
    assert "TUI_OAUTH_SERVE_WORKERS" in result.output and "'many'" in result.output, (
        result.output)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_configured_by_the_environment_alone(cli: Cli) -> None:
    """The real program as the unit runs it: the store and every option from the
    environment; --listen given as well wins over TUI_OAUTH_SERVE_LISTEN."""
    env_port, flag_port = _free_port(), _free_port()
    assert cli.db_url is not None
    env = {**base_env(), "TUI_OAUTH_DB": cli.db_url,
           "TUI_OAUTH_SERVE_LISTEN": f"127.0.0.1:{env_port}",
           "TUI_OAUTH_SERVE_PUBLIC_URL": "https://oauth.example.com/jira",
           "TUI_OAUTH_SERVE_MAX_CONNECTIONS": "64",
           "TUI_OAUTH_SERVE_HEADER_TIMEOUT": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "tui_oauth", "serve",
                             "--listen", f"127.0.0.1:{flag_port}"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        answered = False
        while not answered and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            with suppress(requests.ConnectionError):
                answered = requests.get(f"http://127.0.0.1:{flag_port}/rest/ping",
                                        timeout=2).ok
            if not answered:
                time.sleep(0.1)
        assert answered, "serve did not answer on the --listen port"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{env_port}/rest/ping", timeout=2)
    finally:
        stderr = stop_process(proc, timeout=15)
    assert (f"Serving https://oauth.example.com/jira on 127.0.0.1:{flag_port}" in stderr
            and "at most 64 connections, request headers within 3 s" in stderr), stderr
