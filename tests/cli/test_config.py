"""The config file (core/config.py): where it is, what it may hold, and its place in
the precedence flag > environment variable > file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_support import Cli, base_env
from tests.conftest import new_sqlite_store
from tui_oauth.core.config import ConfigError, config_path, load_config, resolve_db_url


def write(path: Path, text: str) -> dict[str, str]:
    path.write_text(text, encoding="utf-8")
    return {"TUI_OAUTH_CONFIG": str(path)}


def test_the_default_place_is_the_user_config_directory(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path({}) == tmp_path / "tui-oauth" / "config.toml"
    assert load_config({}).exists is False  # no file: defaults, no error


def test_db_precedence_flag_then_environment_then_file(tmp_path: Path) -> None:
    env = write(tmp_path / "c.toml", f'db = "{tmp_path / "from-file.db"}"\n')
    assert resolve_db_url(None, env) == f"sqlite:///{tmp_path / 'from-file.db'}"
    env_db = {**env, "TUI_OAUTH_DB": str(tmp_path / "from-env.db")}
    assert resolve_db_url(None, env_db) == f"sqlite:///{tmp_path / 'from-env.db'}"
    assert resolve_db_url(str(tmp_path / "flag.db"), env_db) == f"sqlite:///{tmp_path / 'flag.db'}"


@pytest.mark.parametrize(("text", "said"), [
    ("db = [1, 2", "not valid TOML"),
    ("colour = 'blue'\n", "unknown setting(s): colour"),
    ("db = 3\n", "db must be a store URL"),
    ("[keymap]\n'consumers.add' = 1\n", "[keymap] must map binding ids"),
    ("serve = 'yes'\n", "serve must be a table"),
])
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path: Path, text: str, said: str) -> None:
    env = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert said in caught.value.message and str(tmp_path / "bad.toml") in caught.value.message
    assert caught.value.hint


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({"TUI_OAUTH_CONFIG": str(tmp_path / "nope.toml")})


def test_the_cli_reads_the_store_from_the_file_and_says_a_broken_file(tmp_path: Path) -> None:
    db = tmp_path / "configured.db"
    new_sqlite_store(f"sqlite:///{db}")
    env = {**base_env(), **write(tmp_path / "c.toml", f'db = "{db}"\n')}
    cli = Cli(None, env)
    cli("--db", f"sqlite:///{db}", "consumers", "add", "--key", "from:config", "--name", "Conf",
        "--public-key-file", str(_pem(tmp_path)))
    assert "from:config" in cli("consumers", "list", "--json").stdout  # no --db: the file's
    (tmp_path / "c.toml").write_text("db = [", encoding="utf-8")
    broken = cli("consumers", "list", rc=None)
    assert broken.returncode != 0
    assert "not valid TOML" in broken.stderr and str(tmp_path / "c.toml") in broken.stderr


def test_a_broken_file_is_an_error_when_db_or_its_variable_names_the_store(
        tmp_path: Path) -> None:
    """Finding 13: --db and TUI_OAUTH_DB win over the file's db, but a broken file is
    said all the same (one line, exit 1), by every command; doctor says it once."""
    db = tmp_path / "s.db"
    new_sqlite_store(f"sqlite:///{db}")
    env = {**base_env(), **write(tmp_path / "c.toml", "db = [\n")}
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_db_url(str(db), env)
    cli = Cli(None, env, init=False)
    for args in (("--db", str(db), "consumers", "list"), ("--db", str(db), "providers", "list"),
                 ("--db", str(db), "doctor")):
        r = cli(*args, rc=1)
        (line,) = r.stderr.splitlines()
        assert line.startswith(f"error: The config file {tmp_path / 'c.toml'} is not valid "
                               "TOML"), line
        assert r.stdout == ""
    r = cli("consumers", "list", rc=1, env={"TUI_OAUTH_DB": str(db)})
    assert "not valid TOML" in r.stderr


def _pem(tmp_path: Path) -> Path:
    from tests.helpers import pem_spki, rsa_key

    path = tmp_path / "key.pem"
    path.write_text(pem_spki(rsa_key(0)), encoding="utf-8")
    return path


def test_keymap_from_the_file_with_the_environment_over_it(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from tui_oauth.tui.app import configured_keymap

    env = write(tmp_path / "c.toml", "[keymap]\n'consumers.add' = 'A'\n'app.quit' = 'ctrl+q'\n")
    monkeypatch.setenv("TUI_OAUTH_CONFIG", env["TUI_OAUTH_CONFIG"])
    monkeypatch.setenv("TUI_OAUTH_KEYMAP", "app.quit=ctrl+x;junk")
    problems: list[str] = []
    assert configured_keymap(problems) == {"consumers.add": "A", "app.quit": "ctrl+x"}
    assert problems and problems[0].startswith("TUI_OAUTH_KEYMAP: ")
    (tmp_path / "c.toml").write_text("[keymap\n", encoding="utf-8")
    problems = []
    assert configured_keymap(problems) == {"app.quit": "ctrl+x"}
    assert any("not valid TOML" in p for p in problems)


def test_doctor_names_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    new_sqlite_store(f"sqlite:///{db}")
    env = {**base_env(), **write(tmp_path / "c.toml", "[serve]\nlisten = '127.0.0.1:9'\n")}
    out = Cli(f"sqlite:///{db}", env, init=False)("doctor", rc=None).stdout
    assert str(tmp_path / "c.toml") in out and "sets serve" in out


def test_serve_options_from_the_file_below_the_environment_and_flags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[serve] gives serve's defaults (click's default_map); TUI_OAUTH_SERVE_* beats it,
    a flag beats both; an unknown key is an error naming it."""
    from click.testing import CliRunner

    from tui_oauth.cli import cli as root
    from tui_oauth.cli import serve as serve_module

    seen: dict[str, object] = {}

    def fake_run(**params: object) -> None:  # stands in for the server, not for parsing
        seen.update(params)

    write(tmp_path / "c.toml", "[serve]\nworkers = 3\nheader-timeout = 2.5\n"
          "listen = '127.0.0.1:7001'\n")
    monkeypatch.setenv("TUI_OAUTH_CONFIG", str(tmp_path / "c.toml"))
    monkeypatch.setattr(serve_module.serve, "callback", lambda **kw: fake_run(**kw))
    db = ["--db", f"sqlite:///{tmp_path / 's.db'}"]
    env = {"TUI_OAUTH_SERVE_HEADER_TIMEOUT": "4"}
    done = CliRunner().invoke(root, [*db, "serve", "--listen", "127.0.0.1:7002"], env=env)
    assert done.exit_code == 0, done.output
    assert seen["workers"] == 3  # from the file
    assert seen["header_timeout"] == 4.0  # the environment over the file
    assert seen["listen"] == "127.0.0.1:7002"  # the flag over both
    (tmp_path / "c.toml").write_text("[serve]\nworker = 3\n", encoding="utf-8")
    bad = CliRunner().invoke(root, [*db, "serve"])
    assert bad.exit_code != 0 and "unknown [serve] option(s): worker" in bad.output


def test_a_bad_serve_value_in_the_file_names_the_file_and_doctor_fails_it(
        tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    new_sqlite_store(f"sqlite:///{db}")
    env = {**base_env(), **write(tmp_path / "c.toml", "[serve]\nworkers = 'two'\n")}
    cli = Cli(f"sqlite:///{db}", env, init=False)
    bad = cli("serve", rc=1)
    assert str(tmp_path / "c.toml") in bad.stderr and "[serve] workers = 'two'" in bad.stderr
    assert "TUI_OAUTH_SERVE_WORKERS" not in bad.stderr  # not blamed on a variable
    (tmp_path / "c.toml").write_text("[serve]\nbogus = 1\n", encoding="utf-8")
    report = cli("doctor", rc=1)
    assert "unknown [serve] option(s): bogus" in report.stdout
