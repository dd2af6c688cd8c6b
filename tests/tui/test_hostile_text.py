"""Text from outside never reaches the terminal raw, never as markup, never as an option.

Issue 7, items 7, 8 and 22:

- the audit actor is the process's real uid (the login name beside it when the
  environment says otherwise) and the SSH address is an IP address or ``invalid``;
- everything stored that came from outside is printed by the CLI through
  ``core.text.visible`` and shown by the console as plain ``Text``: an escape
  sequence (clear screen, window title, OSC 52 clipboard), a C1 control, a bidi
  override or a line separator shows as ``\\x1b``, ``\\u202e``...; ``mk[/b]`` and
  ``[@click=app.quit]`` show as written and crash or run nothing;
- every text field refuses control characters (validation.Checker), and the
  console refuses a paste that holds them (or several lines into a one-line field)
  instead of cutting it short in silence;
- a token, key or name starting with ``-`` goes after ``--``, and the command the
  authorize page prints does exactly that.
"""

from __future__ import annotations

import ast
import html
import json
import logging
import os
import pwd
import re
import shlex
import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session
from textual import events
from textual.widgets import Input

import tui_oauth.tui
from tests.cli_support import Cli
from tests.helpers import pem_spki, rsa_key
from tests.tui_support import screen_text, settle, wait_for
from tui_oauth.core.audit import Actor
from tui_oauth.core.consumer_info_doc import parse_consumer_info
from tui_oauth.core.database import make_engine
from tui_oauth.core.errors import ValidationError
from tui_oauth.core.keys import generate_key_pair
from tui_oauth.core.models import AuditEntry, Token, TokenState, TokenType
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store
from tui_oauth.core.text import VisibleFormatter, command_line, visible, visible_json
from tui_oauth.core.timeutil import utcnow
from tui_oauth.core.validation import Checker
from tui_oauth.tui.app import make_app
from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal
from tui_oauth.tui.screens.audit import AuditScreen
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.widgets.field import Field
from tui_oauth.web.pages import approve_elsewhere

# Clear the screen, set the window title, put a command into the clipboard (OSC 52).
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4K\x07"
C1 = "\x9b31m"  # CSI as one C1 character
BIDI = "\u202egnp.exe\u202c \u2066x\u2069 \u200e"
SEPARATORS = "a\u2028b\u2029c"
HOSTILE = f"{ESCAPES}{C1}{BIDI}{SEPARATORS}\x7f"
MARKUP_KEY = "mk[/b]"
MARKUP_NAME = "[@click=app.quit]x[/b]"
ME = pwd.getpwuid(os.getuid()).pw_name


def raw_hidden(shown: str) -> list[str]:
    """Characters that must never reach a terminal raw (line feeds aside)."""
    return [ch for ch in shown if ch != "\n"
            and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


def write_sql(db_url: str, sql: str, **params: Any) -> None:
    """Write around the services: a row from before the checks, or another program."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


# --- the one escaping function -------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2J", "\\x1b[2J"),
    ("\x1b]52;c;eA==\x07", "\\x1b]52;c;eA==\\x07"),
    ("a\x9bb\x85c\x7f", "a\\x9bb\\x85c\\x7f"),
    ("\u202eabc\u202c", "\\u202eabc\\u202c"),
    ("\u2066\u2067\u2068\u2069\u202a\u202b\u202d",
     "\\u2066\\u2067\\u2068\\u2069\\u202a\\u202b\\u202d"),
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    ("zero\u200bwidth\u00adsoft\ufeff", "zero\\u200bwidth\\xadsoft\\ufeff"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("line\nfeed\ttab\rcr", "line\\nfeed\\ttab\\rcr"),
    ("Zoë, 日本, Ελληνικά, 🙂, [b]x[/b], C:\\dir", "Zoë, 日本, Ελληνικά, 🙂, [b]x[/b], C:\\dir"),
])
def test_visible_escapes_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert not raw_hidden(visible(raw))
    assert visible(visible(raw)) == visible(raw)


def test_visible_multiline_keeps_line_feeds_and_tabs_only() -> None:
    assert visible("a\nb\tc\rd\u2028e", multiline=True) == "a\nb\tc\\rd\\u2028e"


def test_json_stays_json_with_nothing_raw() -> None:
    data = {"name": HOSTILE, "é": "日本 Zoë", "astral": "\U000e0001", "surrogate": "\udcff"}
    dumped = visible_json(json.dumps(data, ensure_ascii=False))
    assert json.loads(dumped) == data
    assert not raw_hidden(dumped)
    assert "日本 Zoë" in dumped  # readable, not \\u-escaped


def test_log_lines_are_escaped_and_cannot_forge_the_next_one() -> None:
    formatter = VisibleFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("tui_oauth", logging.WARNING, __file__, 1,
                               "unknown consumer key %s", ("k" + ESCAPES + "\nERROR forged",),
                               None)
    line = formatter.format(record)
    assert not raw_hidden(line) and "\n" not in line
    assert line.startswith("WARNING unknown consumer key k\\x1b[2J")


# --- the audit actor -------------------------------------------------------------------


def test_actor_is_the_real_uid_with_the_claimed_login_beside_it() -> None:
    forged = Actor.from_environment({"LOGNAME": "alice" + ESCAPES, "USER": "bob",
                                     "SSH_CLIENT": ESCAPES + " 50000 22"})
    assert forged.user.startswith(f"{ME} (login alice\\x1b[2J")
    assert not raw_hidden(forged.user) and not raw_hidden(str(forged))
    assert forged.client_addr == "invalid"
    honest = Actor.from_environment({"LOGNAME": ME, "SSH_CLIENT": "192.0.2.7 50000 22"})
    assert (honest.user, honest.client_addr) == (ME, "192.0.2.7")
    sudo = Actor.from_environment({"USER": ME}, uid=0)
    assert sudo.user == f"{pwd.getpwuid(0).pw_name} (login {ME})" or ME == "root"
    assert Actor.from_environment({"SSH_CONNECTION": "2001:DB8:0::1 1 ::1 22"}).client_addr \
        == "2001:db8::1"
    assert Actor.from_environment({}).client_addr is None
    long = Actor.from_environment({"LOGNAME": "x" * 500})
    assert len(long.user) < 255


# --- validation: one rule for every text field -------------------------------------------


@pytest.mark.parametrize("bad", [ESCAPES, C1, "\u202e", "\u2028", "\u2029", "\x7f", "\ue000"])
def test_checker_refuses_control_characters_and_names_them(bad: str) -> None:
    c = Checker()
    assert c.text("name", f"a{bad}b", label="Name", max_len=1000) is None
    [error] = c.errors
    assert error.field == "name" and "control characters" in error.message
    assert visible(bad)[:4] in error.message or "\\ue000" in error.message
    assert not raw_hidden(error.message)


def test_line_separator_is_refused_by_the_services_and_in_fetched_documents(
        tui_store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        services(tui_store).consumers.add(key="k", name="JIRA\u2028evil",
                                          public_key=pem_spki(rsa_key(0)))
    assert [e.field for e in info.value.errors] == ["name"]
    _, b64 = generate_key_pair()
    with pytest.raises(ValidationError) as info:
        parse_consumer_info(f"<consumer><key>k</key><name>n</name><publicKey>{b64}"
                            f"</publicKey><description>a\u2029b</description></consumer>"
                            .encode())
    assert "control characters" in str(info.value.errors)


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def made(cli: Cli, keyring_backend: Any) -> Cli:
    """The ``cli`` fixture with its store made first (a store is made on first use only
    at the default location)."""
    assert cli.db_url is not None
    open_store(cli.db_url, secrets_backend=keyring_backend).close()
    return cli


@pytest.mark.secret_service
def test_cli_prints_outside_text_escaped_and_json_exact(made: Cli, pem_file: Path) -> None:
    cli = made
    forged = {"LOGNAME": "mallory" + ESCAPES, "USER": "mallory" + ESCAPES,
              "SSH_CLIENT": ESCAPES + " 22 22"}
    cli("consumers", "add", "--key", "k1", "--name", "Name", "--public-key-file",
        str(pem_file), env=forged)
    assert cli.db_url is not None
    # Rows written before the checks existed, or by another program.
    write_sql(cli.db_url, "UPDATE consumers SET name = :n, description = :d, callback_url = :c",
              n="Name" + HOSTILE, d="line one\n" + HOSTILE, c="https://x.example/" + BIDI)
    _insert_token(cli.db_url, "t1", "k1", type=TokenType.ACCESS, state="active",
                  user="alice" + ESCAPES)
    texts = [
        cli("audit"), cli("consumers", "list"), cli("consumers", "show", "k1"),
        cli("tokens", "list"),
        cli("consumers", "add", "--key", "k2", "--name", "n", "--secret-file",
            "/nonexistent/" + ESCAPES, rc=1),
        cli("consumers", "edit", "k1", "--name", "Better" + ESCAPES, rc=1),
    ]
    for r in texts:
        printed = r.stdout + r.stderr
        assert not raw_hidden(printed), (r.args, printed)
        assert "\\x1b" in printed, (r.args, printed)
    assert "\\u202egnp.exe\\u202c" in texts[2].stdout and "\\u2028" in texts[2].stdout
    assert "line one" in texts[2].stdout  # a description keeps its lines
    entry = cli("audit", "--json").json()["entries"][-1]
    assert entry["actor"].startswith(f"{ME} (login mallory\\x1b[2J")
    assert entry["client_addr"] == "invalid"
    for args in (("consumers", "show", "k1", "--json"), ("consumers", "list", "--json"),
                 ("tokens", "list", "--json"), ("audit", "--json")):
        r = cli(*args)
        assert not raw_hidden(r.stdout), (args, r.stdout)
    shown = cli("consumers", "show", "k1", "--json").json()
    assert shown["name"] == "Name" + HOSTILE  # JSON carries the exact value
    assert cli("tokens", "list", "--json").json()["tokens"][0]["user"] == "alice" + ESCAPES


# --- the console ---------------------------------------------------------------------------


def _assert_safe(pilot: Any) -> str:
    shown = screen_text(pilot)
    assert not raw_hidden(shown), shown
    return shown


def _notes(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


def _spent_token(store: Store, consumer_id: int | None) -> None:
    """A used request token: the consumer has tokens (R is offered) but none live, so R
    says so in a notification quoting the key."""
    assert consumer_id is not None
    with Session(store.engine) as s:
        s.add(Token(token="spent-token-1", consumer_id=consumer_id, type=TokenType.REQUEST,
                    state=TokenState.USED, user="alice", secret_enc=b"\x00enc"))
        s.commit()


async def test_console_shows_markup_and_escapes_literally_and_survives(
        tui_store: Store, sqlite_url: str) -> None:
    added = services(tui_store).consumers.add(key=MARKUP_KEY, name=MARKUP_NAME,
                                              public_key=pem_spki(rsa_key(0)),
                                              description="[b]bold?[/b] [link=https://evil.example]x[/link]")
    _spent_token(tui_store, added.id)
    write_sql(sqlite_url, "UPDATE consumers SET description = description || :d", d=HOSTILE)
    with Session(tui_store.engine) as s:
        s.add(AuditEntry(actor="mallory" + ESCAPES, client_addr=ESCAPES, action="consumer.edit",
                         target_type="consumer", target=MARKUP_KEY + BIDI,
                         detail=SEPARATORS + C1))
        s.commit()
    app = make_app(tui_store)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        shown = _assert_safe(pilot)
        assert MARKUP_KEY in shown and MARKUP_NAME in shown
        # Open it: every field as written, the description's escapes visible.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerDetailScreen)
        shown = _assert_safe(pilot)
        assert f"Consumer {MARKUP_KEY} — {MARKUP_NAME}" in shown
        assert "[b]bold?[/b]" in shown and "\\x1b[2J\\x1b]0;pwned\\x07" in shown
        # A notification quoting the key (this one ended the console with MarkupError).
        await pilot.press("R")
        assert await wait_for(pilot, lambda: any(MARKUP_KEY in n for n in _notes(app)))
        await settle(pilot)
        assert f"{MARKUP_KEY} has no live token to revoke." in _assert_safe(pilot)
        # Edit: the stored escapes show escaped, said under the field; saving works.
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        shown = _assert_safe(pilot)
        assert f"Edit consumer {MARKUP_KEY}" in shown
        description = app.screen.query_one("#description", Input).value
        assert "\\x1b[2J" in description and not raw_hidden(description)
        assert "control characters" in app.screen.query_one("#field-description", Field).error
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConsumerDetailScreen))
        assert await wait_for(pilot, lambda: any("saved" in n for n in _notes(app)))
        assert services(tui_store).consumers.get(MARKUP_KEY).description == description
        _assert_safe(pilot)
        # The audit view: the forged actor and address, escaped.
        await pilot.press("escape", "l")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("G")
        await settle(pilot)
        shown = _assert_safe(pilot)
        assert "mallory\\x1b[2J" in shown
        await pilot.press("escape")
        await settle(pilot)
        # Remove, typing the key as shown.
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, TypedConfirmModal)
        _assert_safe(pilot)
        await pilot.press(*MARKUP_KEY, "enter")
        assert await wait_for(pilot, lambda: any("removed" in n for n in _notes(app)))
        assert isinstance(app.screen, MainScreen)
        _assert_safe(pilot)
        assert app.is_running
    assert services(tui_store).consumers.list() == []


async def test_markup_in_a_key_never_ends_the_console_in_a_notification(
        tui_store: Store) -> None:
    """``mk[/b]`` in a notification raised MarkupError and ended the console."""
    added = services(tui_store).consumers.add(key=MARKUP_KEY, name=MARKUP_NAME,
                                              public_key=pem_spki(rsa_key(0)))
    _spent_token(tui_store, added.id)
    app = make_app(tui_store)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("R")  # a used token, none live: says so, quoting the key
        assert await wait_for(pilot, lambda: any(MARKUP_KEY in n for n in _notes(app)))
        await settle(pilot)
        assert f"{MARKUP_KEY} has no live token to revoke." in screen_text(pilot)
        assert app.is_running and isinstance(app.screen, ConsumerDetailScreen)


async def test_a_key_with_a_control_character_is_removed_by_typing_it_as_shown(
        tui_store: Store, sqlite_url: str) -> None:
    services(tui_store).consumers.add(key="evil-key", name="n", public_key=pem_spki(rsa_key(0)))
    write_sql(sqlite_url, "UPDATE consumers SET key = :k", k="evil\x1b[2J")
    app = make_app(tui_store)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        assert "evil\\x1b[2J" in _assert_safe(pilot)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press(*"evil\\x1b[2J", "enter")
        assert await wait_for(pilot, lambda: not services(tui_store).consumers.list())
        _assert_safe(pilot)


async def _paste(pilot: Any, text_: str) -> None:
    pilot.app.post_message(events.Paste(text_))
    await pilot.pause()
    await pilot.pause()


PASTES = [
    "ab\x1b[31mcd",            # an escape sequence
    "JIRA\u2028evil",          # Input used to keep "JIRA" and drop the rest in silence
    "JIRA\nrm -rf ~",          # several lines into a one-line field
    "JIRA\x1e",                # a separator Input also split on
    "\u202eJIRA",              # a bidi override
]


async def test_a_paste_with_control_characters_is_refused_under_the_field(
        tui_store: Store) -> None:
    """Each paste in turn, in one form (one console start for all of them)."""
    app = make_app(tui_store)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("a", "m", *"k1")
        name = app.screen.query_one("#name", Input)
        name.focus()
        await pilot.pause()
        field = app.screen.query_one("#field-name", Field)
        for pasted in PASTES:
            field.show_error("")
            await _paste(pilot, pasted)
            assert name.value == "", repr(pasted)  # nothing pasted, nothing cut short
            assert "control characters" in field.error, repr(pasted)
            assert "Nothing was pasted" in field.error, repr(pasted)
            _assert_safe(pilot)
        await _paste(pilot, "JIRA\r\n")  # a copied line with its line break is fine
        assert name.value == "JIRA"
        # Typed into a field around the paste check, the service refuses it on save.
        name.value = "JIRA" + ESCAPES
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        assert "control characters (\\x1b, \\x07)" in \
            app.screen.query_one("#field-name", Field).error
    assert services(tui_store).consumers.list() == []


# Calls whose first argument is shown as markup unless it is a literal or plain Text.
_SHOWN = {"Static", "Label", "Button", "update"}


def _safe_arg(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in ("plain", "Text"):
        return True
    if isinstance(node, ast.IfExp):
        return _safe_arg(node.body) and _safe_arg(node.orelse)
    return False


def _tui_modules() -> list[Path]:
    return sorted(Path(tui_oauth.tui.__file__).parent.rglob("*.py"))


def test_no_console_module_passes_data_as_markup() -> None:
    """Every notify says markup=False; every Static, Label, Button and update() gets a
    literal or ``plain(...)`` (a Text with control characters escaped); nothing parses
    markup from a string (``from_markup``) or asks for ``markup=True``."""
    problems: list[str] = []
    checked = 0
    for path in _tui_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "from_markup":
                problems.append(f"{path.name}:{node.lineno} from_markup")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else "")
            keywords = {k.arg: k.value for k in node.keywords}
            markup = keywords.get("markup")
            if isinstance(markup, ast.Constant) and markup.value is True:
                problems.append(f"{path.name}:{node.lineno} markup=True")
            if name == "notify":
                checked += 1
                if not (isinstance(markup, ast.Constant) and markup.value is False):
                    problems.append(f"{path.name}:{node.lineno} notify without markup=False")
            elif name in _SHOWN and node.args:
                checked += 1
                if not _safe_arg(node.args[0]):
                    shown = ast.unparse(node.args[0])
                    problems.append(f"{path.name}:{node.lineno} {name}({shown})")
    assert checked > 60, checked
    assert not problems, "\n".join(problems)


def test_the_ast_check_catches_a_bad_call(tmp_path: Path) -> None:
    tree = ast.parse('self.notify(f"{key} saved")\nLabel(name)\nx.update(f"{a}")')
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert not any(_safe_arg(c.args[0]) for c in calls)
    assert _safe_arg(ast.parse('plain(f"{a}")', mode="eval").body)


# --- values that start with "-" -------------------------------------------------------------


def test_command_line_puts_values_after_double_dash() -> None:
    assert command_line("tokens", "authorize", "--user", "NAME", values=["-abc"]) == \
        "tui-oauth tokens authorize --user NAME -- -abc"
    assert command_line("consumers", "show", values=["a b"]) == "tui-oauth consumers show -- 'a b'"


def _insert_token(db_url: str, token: str, consumer_key: str, *, type: str = TokenType.REQUEST,
                  state: str = "pending", user: str | None = None) -> None:
    """A token as the provider would issue it (a request token pending for 10 minutes)."""
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            cid = s.execute(text("SELECT id FROM consumers WHERE key = :k"),
                            {"k": consumer_key}).scalar_one()
            s.add(Token(token=token, consumer_id=cid, type=type, state=state, user=user,
                        callback_url="oob", expires_at=utcnow() + timedelta(minutes=10)))
            s.commit()
    finally:
        engine.dispose()


@pytest.mark.secret_service
def test_the_printed_authorize_command_works_for_a_token_starting_with_dash(
        made: Cli, pem_file: Path) -> None:
    cli = made
    cli("consumers", "add", "--key", "-jira", "--name", "JIRA", "--public-key-file",
        str(pem_file))
    assert cli.db_url is not None
    token = "-Qx9_3vB2"  # token_urlsafe: one token in 64 starts with "-"
    _insert_token(cli.db_url, token, "-jira")
    page = approve_elsewhere(token, "JIRA", None)
    printed = html.unescape(re.search(r"<code>(.*?)</code>", page).group(1))  # type: ignore[union-attr]
    argv = shlex.split(printed.replace("NAME", "alice"))
    assert argv[0] == "tui-oauth"
    result = cli(*argv[1:])
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}\n", result.stdout), result.stdout
    row = cli.query("SELECT state, user FROM tokens WHERE token = :t", t=token)
    assert row == [("authorized", "alice")]


@pytest.mark.secret_service
def test_keys_names_and_tokens_starting_with_dash_go_after_double_dash(
        made: Cli, pem_file: Path) -> None:
    cli = made
    cli("consumers", "add", "--key", "-k", "--name", "-n", "--public-key-file", str(pem_file))
    assert cli.db_url is not None
    _insert_token(cli.db_url, "-t", "-k")
    assert cli("consumers", "show", "--json", "--", "-k").json()["name"] == "-n"
    cli("consumers", "edit", "--description", "-d", "--", "-k")
    assert cli("consumers", "show", "--json", "--", "-k").json()["description"] == "-d"
    assert cli("consumers", "list", "--filter", "-n", "--json").json()[0]["key"] == "-k"
    assert cli("tokens", "list", "--consumer", "-k", "--json").json()["tokens"][0]["token"] == "-t"
    assert "revoked" in cli("tokens", "revoke", "--yes", "--", "-t").stdout
    # Without --, click reads it as options; the error says what to do, in one place.
    refused = cli("tokens", "revoke", "--yes", "-t", rc=2)
    assert "goes after --" in refused.stderr
    assert "tokens revoke [OPTIONS] -- VALUE" in refused.stderr
    refused = cli("consumers", "show", "-\x1b[2J", rc=2)
    assert not raw_hidden(refused.stderr) and "\\x1b" in refused.stderr
    cli("consumers", "remove", "--yes", "--", "-k")
    assert cli("consumers", "list", "--json").json() == []
