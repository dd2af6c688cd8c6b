"""What every command shares: the lazily opened store, output, secrets input, errors."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, overload

import click

from tui_oauth.core.errors import ReadOnlyError, TuiOAuthError, ValidationError
from tui_oauth.core.text import visible, visible_json
from tui_oauth.core.unset import UNSET

if TYPE_CHECKING:  # the store (SQLAlchemy, SQLModel: ~350 ms) loads when first used
    from keyring.backend import KeyringBackend

    from tui_oauth.core.store import Store

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# click's parameter types are generic for the type checker; older click releases
# cannot subscript them at run time, so only the checker sees the argument.
if TYPE_CHECKING:
    StrChoice = click.Choice[str]
else:
    StrChoice = click.Choice

MAX_SECRET_INPUT = 64 * 1024


class AppContext:
    """Carried in click's ``ctx.obj``.  The store opens on first use."""

    def __init__(self, db: str | None, read_only: bool,
                 secrets_backend: KeyringBackend | None = None) -> None:
        self.db = db
        self.read_only = read_only
        self.secrets_backend = secrets_backend
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from tui_oauth.core.config import is_default_location, resolve_db_url
            from tui_oauth.core.store import open_store

            # A store is made on first use only at the default location; elsewhere a
            # missing store is an error (a typo, or a store removed under us), and
            # `tui-oauth db init` makes one on purpose.
            self._store = open_store(self.db, secrets_backend=self.secrets_backend,
                                     read_only=self.read_only,
                                     create=is_default_location(resolve_db_url(self.db)))
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class LazyChoice(StrChoice):
    """A :class:`click.Choice` whose values come from ``load``, called when first needed
    (the command's help, parsing the option, completing its value).  A command module
    can then name choices defined beside the models (SQLAlchemy, SQLModel: ~350 ms)
    without importing them when it is only loaded, for `--help` or a TAB."""

    def __init__(self, load: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None
        super().__init__((), case_sensitive)

    @property
    def choices(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    @choices.setter
    def choices(self, value: Iterable[str]) -> None:
        values = tuple(value)
        self._values = values or None  # Choice.__init__ sets the empty tuple: load later


# Completion -----------------------------------------------------------------

#: At most this many values offered for one TAB.
COMPLETION_LIMIT = 200


def _completion_db(ctx: click.Context) -> str | None:
    """The root's --db (or TUI_OAUTH_DB) as the half-parsed command line gives it."""
    root = ctx.find_root()
    value = root.params.get("db")
    return value if isinstance(value, str) else None


def _complete_from_store(ctx: click.Context, table: str, column: str,
                         incomplete: str) -> list[str]:
    """Values of ``table.column`` starting with ``incomplete``, for a TAB; never raises.

    On SQLite the file is read directly with the standard library, read-only (the
    store's own imports, SQLAlchemy and SQLModel, cost ~350 ms: more than a TAB may
    take); the column's unique index answers the prefix range.  A missing file gives
    nothing (completion never creates a store).  On PostgreSQL one SQL query through
    the engine.  Values that a shell cannot take as one word (control characters,
    white space) are left out.
    """
    query = (f"SELECT {column} FROM {table} WHERE {column} >= ? AND {column} < ? "  # noqa: S608
             f"ORDER BY {column} LIMIT {COMPLETION_LIMIT}")
    bounds = (incomplete, incomplete + "\U0010ffff")
    values: list[str] = []
    try:
        from tui_oauth.core.config import resolve_db_url

        url = resolve_db_url(_completion_db(ctx))
        from tui_oauth.core.sqlite_reads import connect_read_only, sqlite_file

        path = sqlite_file(url)
        if path is not None:
            if not path.is_file():
                return []
            db = connect_read_only(path)
            try:
                values = [row[0] for row in db.execute(query, bounds)]
            finally:
                db.close()
        else:
            from sqlalchemy import text

            from tui_oauth.core.database import make_engine

            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    values = list(conn.execute(text(query.replace("?", ":lo", 1)
                                                    .replace("?", ":hi", 1)),
                                               {"lo": bounds[0], "hi": bounds[1]}).scalars())
            finally:
                engine.dispose()
    except Exception:  # a TAB offers nothing rather than a traceback
        return []
    return [v for v in values if isinstance(v, str) and v.isprintable() and not any(
        ch.isspace() for ch in v)]


def complete_consumer_keys(ctx: click.Context, param: click.Parameter,
                           incomplete: str) -> list[str]:
    """``shell_complete`` of a consumer key argument: the store's keys."""
    return _complete_from_store(ctx, "consumers", "key", incomplete)


def complete_provider_names(ctx: click.Context, param: click.Parameter,
                            incomplete: str) -> list[str]:
    """``shell_complete`` of a service provider argument: the store's provider names."""
    return _complete_from_store(ctx, "service_providers", "name", incomplete)


def app_context() -> AppContext:
    obj = click.get_current_context().find_object(AppContext)
    assert obj is not None
    return obj


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def ask_keyring_passphrase() -> Callable[[str], str] | None:
    """How the keyring passphrase is asked for: ``getpass`` (no echo) when stdin is a
    terminal; None when it is not (the core then says that it cannot ask, and how to
    give the passphrase in a file)."""
    if not _stdin_is_tty():
        return None
    import getpass

    return getpass.getpass


def say_warning(message: str) -> None:
    """A warning from the core, on stderr (``tui-oauth: warning: ...``)."""
    say(f"tui-oauth: warning: {message}", err=True)


def join_keyring() -> None:
    """Make sure the keyring can be used (see :func:`needs_keyring`), for a command that
    learns only as it runs that it needs it."""
    if app_context().secrets_backend is None:
        from tui_oauth.core.keyring.session import ensure_secret_service

        ensure_secret_service(ask_passphrase=ask_keyring_passphrase(), warn=say_warning)


@overload
def needs_keyring(fn: F) -> F: ...


@overload
def needs_keyring(fn: None = None, *,
                  when: Callable[[dict[str, Any]], bool] | None = None) -> Callable[[F], F]: ...


def needs_keyring(fn: F | None = None, *,
                  when: Callable[[dict[str, Any]], bool] | None = None) -> F | Callable[[F], F]:
    """Mark a command that reads or writes secrets (``when``: only if its options say so).

    With no D-Bus session bus (a plain SSH login) and gnome-keyring installed,
    the user's private keyring session is joined (or unlocked, or started)
    before anything else happens; see tui_oauth.core.keyring.session.  A
    command that will not touch the keyring (``when`` false) asks for no
    passphrase.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if when is None or when(kwargs):
                join_keyring()
            return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)


def touches_secret(options: dict[str, Any]) -> bool:
    """For consumers add/edit: only a secret given or removed needs the keyring."""
    return bool(options.get("secret_stdin") or options.get("secret_file")
                or options.get("remove_secret"))


# Field names from the services -> the flags that set them, for error messages.
FIELD_FLAGS: dict[str, str] = {
    "key": "--key",
    "name": "--name",
    "description": "--description",
    "public_key": "--public-key-file",
    "shared_secret": "--secret-stdin/--secret-file",
    "callback_url": "--callback",
    "signature_method": "--signature-method",
    "allow_plaintext": "--allow-plaintext",
    "two_lo_execute_as": "--execute-as",
    "two_lo_impersonation": "--impersonation",
    "consumer_key": "--consumer-key",
    "request_token_url": "--request-token-url",
    "authorization_url": "--authorization-url",
    "access_token_url": "--access-token-url",
    "url": "--from-url",
    "as_user": "--as",
    "body_hash": "--body-hash",
    "data": "-d/--data-file",
    "verifier": "verifier",
    "sort": "--sort",
    "overlap": "--overlap",
}


def format_error(exc: TuiOAuthError) -> list[str]:
    if isinstance(exc, ValidationError) and len(exc.errors) > 0:
        lines = []
        for e in exc.errors:
            flag = FIELD_FLAGS.get(e.field, e.field)
            lines.append(f"{flag}: {e.message}" if flag else e.message)
        if exc.hint:
            lines.append(exc.hint)
        return lines
    return [str(exc)]


def fail(message: str) -> NoReturn:
    """Exit 1 with a one-line message (user error)."""
    raise click.ClickException(message)


# Help ---------------------------------------------------------------------


def examples(*lines: str) -> str:
    """A command's epilog: ``Examples:`` and ``lines`` kept as written (click's ``\\b``)."""
    return "Examples:\n\n\b\n" + "\n".join(lines)


# Output -------------------------------------------------------------------

#: The forms of `-o/--output`: a table for people, a JSON document, one JSON object a
#: line (jsonl), or only the names (keys, ids) one a line, for `for k in $(...)`.
OUTPUT_FORMATS = ("table", "json", "jsonl", "name")


def output_options(names: str) -> Callable[[F], F]:
    """``-o/--output table|json|jsonl|name``, ``--json`` (``-o json``) and ``-q/--quiet``
    (``-o name``: the ``names``, one per line).  The command gets one ``output`` argument:
    the format asked for, ``table`` when none is.  Put it just above the ``def``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["output"] = _resolve_output(kwargs.pop("output"), kwargs.pop("as_json"),
                                               kwargs.pop("quiet"))
            return fn(*args, **kwargs)

        opts = [
            click.option("-q", "--quiet", is_flag=True,
                         help=f"Print only the {names}, one per line (same as -o name)."),
            click.option("--json", "as_json", is_flag=True, help="Same as -o json."),
            click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default=None,
                         help="table (default), json (one document), jsonl (one JSON "
                              f"object a line) or name (the {names} only)."),
        ]
        for opt in opts:
            wrapper = opt(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _resolve_output(output: str | None, as_json: bool, quiet: bool) -> str:
    if as_json and quiet:
        raise click.UsageError("Give --json or -q, not both.")
    if as_json and output not in (None, "json"):
        raise click.UsageError(f"--json is -o json; it cannot go with -o {output}.")
    if quiet and output not in (None, "name"):
        raise click.UsageError(f"-q is -o name; it cannot go with -o {output}.")
    return "json" if as_json else "name" if quiet else output or "table"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """JSON as it is (non-ASCII text readable), with control, bidi and separator
    characters written as \\uXXXX escapes: the same values, nothing raw on a terminal."""
    click.echo(visible_json(json.dumps(_jsonable(data), indent=2, sort_keys=False,
                                       ensure_ascii=False)))


def print_json_stream(items: Iterable[Any], *, key: str | None = None,
                      after: dict[str, Any] | None = None) -> None:
    """A JSON array written an element at a time (the same text as :func:`print_json`
    of the whole list), so that a listing of any size needs constant memory.

    With ``key``, the array is the value of ``key`` in an object whose other members,
    written after it, are ``after``: the same text as ``print_json({key: [...], **after})``.
    """
    pad = "  " if key is not None else ""
    if key is not None:
        click.echo("{\n  " + json.dumps(key) + ": ", nl=False)
    first = True
    for item in items:
        text = visible_json(json.dumps(_jsonable(item), indent=2, ensure_ascii=False))
        click.echo(("[\n" if first else ",\n") + "\n".join(pad + "  " + line
                                                          for line in text.splitlines()),
                   nl=False)
        first = False
    click.echo("[]" if first else "\n" + pad + "]", nl=key is None)
    if key is not None:
        for name, value in (after or {}).items():
            text = visible_json(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))
            click.echo(",\n  " + json.dumps(name) + ": " + text.replace("\n", "\n  "),
                       nl=False)
        click.echo("\n}")


def print_jsonl(items: Iterable[Any]) -> None:
    """One JSON object a line (JSON Lines), written as each comes: constant memory.
    Newlines inside values are escaped by JSON, separators and controls by visible_json."""
    for item in items:
        click.echo(visible_json(json.dumps(_jsonable(item), ensure_ascii=False)))


def print_names(names: Iterable[Any]) -> None:
    """One name (key, id) a line, shown with :func:`visible`: for `for k in $(...)`."""
    for name in names:
        click.echo(visible(str(name)))


def print_records(output: str, items: Iterable[T], *, record: Callable[[T], Any],
                  name: Callable[[T], Any], headers: Sequence[str],
                  cells: Callable[[T], Sequence[Any]], empty: str,
                  first: int | None = None, shorten: Sequence[str | None] | None = None,
                  json_key: str | None = None,
                  json_after: dict[str, Any] | None = None) -> None:
    """A listing in the ``output`` form of :func:`output_options`, streamed in every form:
    ``record`` is an item's JSON value, ``name`` its name, ``cells`` its table row.

    ``json``: an array (or, with ``json_key``, an object holding the array and
    ``json_after``); ``jsonl``: the records alone, one a line; ``name``: the names, one a
    line (nothing when there are none); ``table``: :func:`print_table_stream`, whose
    first ``first`` rows set the widths (all of them when None)."""
    if output == "json":
        print_json_stream((record(i) for i in items), key=json_key, after=json_after)
    elif output == "jsonl":
        print_jsonl(record(i) for i in items)
    elif output == "name":
        print_names(name(i) for i in items)
    else:
        print_table_stream(headers, (cells(i) for i in items),
                           first=sys.maxsize if first is None else first,
                           shorten=shorten, empty=empty)


def print_record(output: str, record: Any, *, name: Any, show: Callable[[], None]) -> None:
    """One record (a `show` command) in the ``output`` form: ``show`` prints it for
    people (``table``)."""
    if output == "json":
        print_json(record)
    elif output == "jsonl":
        print_jsonl([record])
    elif output == "name":
        print_names([name])
    else:
        show()


def say(message: str, *, err: bool = False) -> None:
    """Print one line of text for people.  Every value in it that came from outside
    (names, keys, URLs, users, error messages quoting input) reaches the terminal
    through :func:`tui_oauth.core.text.visible`: control characters, C1, bidi
    controls and U+2028/U+2029 show as escapes (``\\x1b``, ``\\u202e``), never raw."""
    click.echo(visible(message), err=err)


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def fmt_bool(value: bool) -> str:
    return "yes" if value else "no"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                empty: str = "(none)") -> None:
    """Columns padded by terminal cells; every cell shown with :func:`visible`."""
    print_table_stream(headers, rows, first=sys.maxsize, empty=empty)


def _fit(text: str, width: int, mode: str | None) -> str:
    """``text`` cut to ``width`` cells with an ellipsis: ``"end"`` keeps its start (names),
    ``"middle"`` both ends (keys: ``jira:1354…9426``); ``None`` never cuts (numbers)."""
    if mode is None or width < 2:
        return text
    room = width - 1  # the ellipsis takes one cell
    if text.isascii():  # one cell a character (visible() left no control character):
        if len(text) <= width:  # slices, the common case, and fast
            return text
        if mode == "end":
            return text[:room] + "…"
        return text[:(room + 1) // 2] + "…" + text[len(text) - room // 2:]
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text

    def take(chars: Iterable[str], cells: int) -> list[str]:
        out: list[str] = []
        for ch in chars:
            cells -= cell_len(ch)
            if cells < 0:
                break
            out.append(ch)
        return out

    if mode == "end":
        return "".join(take(text, room)) + "…"
    left = "".join(take(text, (room + 1) // 2))
    right = "".join(reversed(take(reversed(text), room // 2)))
    return left + "…" + right


def _header_style() -> Callable[[str], str]:
    """The header line bold on a terminal (unless NO_COLOR is set); plain text otherwise."""
    import os

    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and not os.environ.get("NO_COLOR"):
        return lambda line: click.style(line, bold=True)
    return lambda line: line


def print_table_stream(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                       first: int, shorten: Sequence[str | None] | None = None,
                       empty: str = "(none)") -> None:
    """A table for listings of any size, in constant memory.

    Every cell is shown with :func:`visible` (text from the store is data: no markup,
    no control characters) and measured in terminal cells by Rich's ``cell_len``: wide
    characters (CJK, emoji) take two, combining marks none, so columns line up.
    The first ``first`` rows (a page of the listing: reading them reads no more) set
    the column widths; the rows after are written as they come, each cell too wide for
    its column shortened as ``shorten`` says for that column (see :func:`_fit`).
    """
    from rich.cells import cell_len  # ~6 ms, only where a table is printed

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - cell_len(c))
                         for c, w in zip(cells, widths, strict=True)).rstrip()

    it = iter(rows)
    head = [[visible(str(c)) for c in r] for r in itertools.islice(it, first)]
    if not head:
        say(empty)
        return
    widths = [max(cell_len(h), *(cell_len(r[i]) for r in head)) for i, h in enumerate(headers)]
    modes = list(shorten) if shorten is not None else [None] * len(headers)
    click.echo(_header_style()(line([h.upper() for h in headers])))
    for r in head:
        click.echo(line(r))
    del head
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()  # the first page shows at once, even through a pipe
    for row in it:
        click.echo(line([_fit(visible(str(c)), w, m)
                         for c, w, m in zip(row, widths, modes, strict=True)]))


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """``Label: value`` lines; a value of several lines (a description) is indented,
    and every value is shown with :func:`visible`."""
    pairs = list(pairs)
    width = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        text = "-" if v is None or v == "" else visible(str(v), multiline=True)
        lines = text.split("\n")
        click.echo(f"{k + ':':<{width + 1}} {lines[0]}")
        for line in lines[1:]:
            click.echo(f"{'':<{width + 1}} {line}")


# Secrets input ------------------------------------------------------------


def secret_options(fn: F) -> F:
    """--secret-stdin / --secret-file: secrets never come as an argument.

    Applied to a finished Command, so the options are appended in this order.
    """
    fn = click.option("--secret-stdin", is_flag=True,
                      help="Read the shared secret from standard input "
                           "(prompted without echo on a terminal).")(fn)
    fn = click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path),
                      help="Read the shared secret from this file (first line).")(fn)
    return fn


def read_secret(secret_stdin: bool, secret_file: Path | None) -> str | None:
    """The secret from stdin or a file, or None when neither flag was given."""
    if secret_stdin and secret_file:
        raise click.UsageError("Give --secret-stdin or --secret-file, not both.")
    if secret_file is not None:
        data = read_head(secret_file, "--secret-file", MAX_SECRET_INPUT)
        return _first_line(data, "--secret-file")
    if secret_stdin:
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass("Shared secret (not shown): ")
        data = sys.stdin.read(MAX_SECRET_INPUT + 1)
        return _first_line(data, "--secret-stdin")
    return None


def secret_edit(secret_stdin: bool, secret_file: Path | None, remove_secret: bool) -> Any:
    """What an edit does to the secret, as the services take it: UNSET keeps it,
    None removes it (--remove-secret), a string replaces it."""
    secret = read_secret(secret_stdin, secret_file)
    if remove_secret:
        if secret is not None:
            raise click.UsageError("--remove-secret cannot go with --secret-stdin/--secret-file.")
        return None
    return UNSET if secret is None else secret


def _first_line(data: str, flag: str) -> str:
    if len(data) > MAX_SECRET_INPUT:
        fail(f"{flag}: the input is larger than {MAX_SECRET_INPUT // 1024} KiB; "
             "a shared secret is one line.")
    line = data.split("\n", 1)[0].rstrip("\r")
    if not line:
        fail(f"{flag}: the input is empty; the shared secret must be on its first line.")
    return line


def read_head(path: str | Path, flag: str, limit: int, *, dash_is_stdin: bool = False,
              not_text: str = "is not UTF-8 text") -> str:
    """The first ``limit + 1`` characters of the UTF-8 text file ``path`` (standard input
    for ``-`` when ``dash_is_stdin``): one more than ``limit`` tells the caller that it
    is too large.  A file that cannot be read, or is not text, fails (exit 1) with a
    message that names ``flag``: ``{flag}: {path} {not_text}.``"""
    try:
        if dash_is_stdin and path == "-":
            return sys.stdin.read(limit + 1)
        with open(path, encoding="utf-8") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        fail(f"{flag}: cannot read {path}: {exc.strerror}.")
    except UnicodeDecodeError:
        fail(f"{flag}: {path} {not_text}.")


def read_text_file(path: str, flag: str, limit: int = 64 * 1024) -> str:
    """A small text file, or standard input for ``-``."""
    data = read_head(path, flag, limit, dash_is_stdin=True,
                     not_text="is not text; give a PEM or base64 file")
    if len(data) > limit:
        fail(f"{flag}: {path} is larger than {limit // 1024} KiB; is it the right file?")
    return data


def confirm(question: str, yes: bool) -> None:
    """Ask before something destructive; --yes skips, no terminal refuses.

    On a --read-only store, refuse first: asking (or demanding --yes) for a
    change that cannot happen would only mislead.
    """
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(AppContext) if ctx is not None else None
    if obj is not None and obj.read_only:
        raise ReadOnlyError("This store is open read-only.",
                            hint="Start without --read-only to change it.")
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{question.rstrip('?')}? Refusing without --yes: not on a terminal to ask. "
             "Nothing was changed.")
    if not click.confirm(visible(question), default=False):
        fail("Cancelled; nothing was changed.")
