"""Running the real ``tui-oauth`` program, for the CLI tests.

``Cli`` runs ``tui-oauth --db URL ...`` (in this process by default, as a
subprocess on request) with stdin not a terminal
(``/dev/null`` unless ``input`` is given), keeps every output, and checks
after each run that no traceback reached stderr.  The ``cli`` fixture gives a
new SQLite store in ``tmp_path`` with its secrets in the real Secret Service
(the D-Bus session that ``make test`` starts) and deletes the store's keyring
items afterwards.

tests/conftest.py loads these fixtures (``pytest_plugins``)
and also import from it, so pytest cannot rewrite its asserts (they all carry
their own message): PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

# new_sqlite_store: re-exported for the CLI tests.
from tests.conftest import new_sqlite_store as new_sqlite_store
from tests.conftest import secret_service_backend
from tui_oauth.core.database import make_engine

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 60.0
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout of {self.args} is not JSON ({exc}):\n{self.stdout}"
                                 f"\n--- stderr:\n{self.stderr}") from None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


def base_env() -> dict[str, str]:
    """The test's environment without anything that would pick another store or a proxy."""
    env = {k: v for k, v in os.environ.items()
           if k != "TUI_OAUTH_DB" and k.lower() not in _PROXY_VARS}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


class Cli:
    """``python -m tui_oauth`` against one store; every result is kept."""

    def __init__(self, db_url: str | None, env: dict[str, str] | None = None, *,
                 init: bool = True, subprocess: bool = False) -> None:
        """``init``: make the store when ``db_url`` names a SQLite file that does not
        exist yet (as `tui-oauth db init` would, but from a template: faster).

        ``subprocess``: run each command as its own process (``python -m
        tui_oauth``), as a user's shell does.  Otherwise the same program runs in
        this process through click's runner: the same code from the command line to
        the store and the real keyring, without half a second of interpreter start
        and imports per command (the suite's budget is 3 minutes).  A test that
        gives its own environment (``env``) always gets subprocesses.
        """
        if init and db_url is not None:
            new_sqlite_store(db_url)
        self.db_url = db_url
        self.subprocess = subprocess or env is not None
        self.env = base_env() if env is None else env
        self.results: list[Result] = []

    def __call__(self, *args: str, input: str | None = None, rc: int | None = 0,
                 env: dict[str, str] | None = None, db: bool = True,
                 timeout: float = RUN_TIMEOUT) -> Result:
        cmd = [sys.executable, "-m", "tui_oauth"]
        if db and self.db_url is not None:
            cmd += ["--db", self.db_url]
        cmd += list(args)
        if self.subprocess:
            done = subprocess.run(
                cmd, cwd=REPO, env={**self.env, **(env or {})}, input=input,
                stdin=subprocess.DEVNULL if input is None else None,
                capture_output=True, text=True, timeout=timeout, check=False,
            )
            result = Result(cmd[3:], done.returncode, done.stdout, done.stderr)
        else:
            result = run_in_process(cmd[3:], input=input, env=env)
        self.results.append(result)
        assert "Traceback" not in result.stderr, (
            f"{cmd[3:]} printed a traceback:\n{result.stderr}")
        if rc is not None:
            assert result.returncode == rc, (
                f"{cmd[3:]} exited {result.returncode}, expected {rc}\n--- stdout:\n"
                f"{result.stdout}\n--- stderr:\n{result.stderr}")
        return result

    def everything_printed(self) -> str:
        return "\n".join(r.stdout + "\n" + r.stderr for r in self.results)

    # Looking into the store behind the program's back -------------------------

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        assert self.db_url is not None
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def store_id(self) -> str:
        rows = self.query("SELECT value FROM store_meta WHERE key = 'store_id'")
        return str(rows[0][0])

    def uid(self, table: str, column: str, value: str) -> str:
        assert table in ("consumers", "service_providers") and column in ("key", "name")
        rows = self.query(f"SELECT uid FROM {table} WHERE {column} = :v", v=value)  # noqa: S608
        assert rows, f"no row in {table} with {column} = {value!r}"
        return str(rows[0][0])

    def keyring_service(self) -> str:
        return f"tui-oauth/{self.store_id()}"


def run_in_process(args: list[str], *, input: str | None = None,
                   env: dict[str, str] | None = None) -> Result:
    """``tui-oauth ARGS`` through click's runner, in this process (see Cli)."""
    import traceback

    from click.testing import CliRunner

    from tui_oauth.cli import cli as root

    overrides: dict[str, str | None] = {k: None for k in os.environ
                                        if k == "TUI_OAUTH_DB" or k.lower() in _PROXY_VARS}
    overrides.update(env or {})
    done = CliRunner().invoke(root, args, input=input, env=overrides, prog_name="tui-oauth",
                              catch_exceptions=True)
    stderr = done.stderr
    code = done.exit_code
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        # What the interpreter would print, so that the no-traceback check sees it.
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(done.exception))
        code = 1
    return Result(args, code, done.stdout, stderr)


def delete_store_secrets(db_url: str, backend: Any) -> None:
    """Remove every keyring item of the store at ``db_url`` (if it was ever created)."""
    from tui_oauth.core.store import open_store

    try:
        store = open_store(db_url, secrets_backend=backend, auto_upgrade=False)
    except Exception:
        return
    try:
        for name in store.secrets.list_names() or []:
            store.secrets.delete(name)
    finally:
        store.close()


@pytest.fixture
def keyring_backend() -> Any:
    return secret_service_backend()


@pytest.fixture
def cli(tmp_path: Path, keyring_backend: Any) -> Iterator[Cli]:
    """The program against a new SQLite store, secrets in the real Secret Service."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner = Cli(url)
    yield runner
    if (tmp_path / "s.db").exists():
        delete_store_secrets(url, keyring_backend)


# Test data ----------------------------------------------------------------------


def rsa_public_key() -> tuple[str, str]:
    """A new RSA public key: (PEM, bare base64 DER SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    b64 = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return pem, b64


@pytest.fixture(scope="session")
def public_key() -> tuple[str, str]:
    return rsa_public_key()


@pytest.fixture
def pem_file(tmp_path: Path, public_key: tuple[str, str]) -> Path:
    path = tmp_path / "consumer.pem"
    path.write_text(public_key[0])
    return path


def provider_args(name: str, *, scheme: str = "https", host: str = "sp.example.com",
                  method: str | None = None) -> list[str]:
    args = ["--name", name, "--consumer-key", f"ck-{name}",
            "--request-token-url", f"{scheme}://{host}/oauth/request-token",
            "--authorization-url", f"{scheme}://{host}/oauth/authorize",
            "--access-token-url", f"{scheme}://{host}/oauth/access-token"]
    if method:
        args += ["--signature-method", method]
    return args


def add_tokens(db_url: str, consumer_key: str, types: list[str]) -> None:
    """Insert tokens the consumer was issued, straight into the database."""
    from sqlmodel import Session, select

    from tui_oauth.core.models import Consumer, Token

    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            cid = s.exec(select(Consumer.id).where(Consumer.key == consumer_key)).one()
            assert cid is not None
            for i, kind in enumerate(types):
                s.add(Token(token=f"{consumer_key}-t{i}", consumer_id=cid, type=kind,
                            user="alice"))
            s.commit()
    finally:
        engine.dispose()


def add_held_tokens(db_url: str, provider: str, count: int) -> None:
    """Insert tokens we hold from a service provider, straight into the database."""
    from sqlmodel import Session, select

    from tui_oauth.core.models import HeldToken, ServiceProvider

    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            pid = s.exec(select(ServiceProvider.id).where(ServiceProvider.name == provider)).one()
            assert pid is not None
            for i in range(count):
                s.add(HeldToken(provider_id=pid, type="access", user="alice",
                                token=f"{provider}-h{i}"))
            s.commit()
    finally:
        engine.dispose()
