"""The command line: ``tui-oauth`` opens the console; subcommands script everything.

Exit codes: 0 success, 1 a user error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

import click

from tui_oauth.cli.common import AppContext, examples, format_error, needs_keyring, say
from tui_oauth.core.errors import TuiOAuthError
from tui_oauth.core.text import VisibleFormatter, visible


class RootGroup(click.Group):
    """Turns user errors into ``error: ...`` on stderr and exit code 1.

    Both the core's errors and the CLI's own (``click.ClickException``, raised
    by ``fail``) get the same lowercase ``error:`` prefix; usage errors keep
    click's usage text and exit code 2.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in LAZY_COMMANDS:
            import importlib

            module, attr, _ = LAZY_COMMANDS[cmd_name]
            found = getattr(importlib.import_module(module), attr)
            self.add_command(found, cmd_name)
        return found

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """A TAB after ``tui-oauth``: command names and their help from LAZY_COMMANDS
        (click's own would import every command to ask for its help), then options."""
        from click.shell_completion import CompletionItem

        found = [CompletionItem(name, help=LAZY_COMMANDS[name][2])
                 for name in sorted(LAZY_COMMANDS) if name.startswith(incomplete)]
        return found + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from LAZY_COMMANDS (importing none of them)."""
        rows = [(name, LAZY_COMMANDS[name][2]) for name in sorted(LAZY_COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TuiOAuthError as exc:
            lines = format_error(exc)
            for line in lines:
                say(f"error: {line}", err=True)
            ctx.exit(1)
        except click.UsageError as exc:
            # click prints it (with the usage line); what it quotes came from the
            # command line, so it is shown like any other outside text.
            message = exc.format_message()
            if isinstance(exc, click.NoSuchOption) and exc.ctx is not None and any(
                    isinstance(p, click.Argument) for p in exc.ctx.command.params):
                message += (" A value that starts with '-' goes after --: "
                            f"{exc.ctx.command_path} [OPTIONS] -- VALUE")
            if visible(message) == exc.format_message():
                raise
            raise click.UsageError(visible(message), ctx=exc.ctx) from None
        except click.ClickException as exc:
            say(f"error: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)
        except click.Abort:
            # Ctrl-C (or Ctrl-D) at a prompt ([y/N], a passphrase): click says "Aborted!";
            # said here as any other interrupt, on a line of its own after the prompt.
            click.echo("", err=True)
            click.echo("Interrupted; nothing more was changed.", err=True)
            ctx.exit(130)
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing more was changed.", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, with the status of a process
            # killed by SIGPIPE (128 + 13), as other command-line tools do (click's own
            # handling would exit 1, a failure, saying nothing).
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: reads the installed version only when asked (see tui_oauth.__init__)."""
    if value and not ctx.resilient_parsing:
        import tui_oauth

        click.echo(f"tui-oauth, version {tui_oauth.__version__}")
        ctx.exit()


@click.group(cls=RootGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=examples(
                 "  tui-oauth                          (the console)",
                 "  tui-oauth consumers list -o json",
                 "  for k in $(tui-oauth consumers list -q); do",
                 "      tui-oauth consumers show \"$k\"",
                 "  done",
                 "  tui-oauth --db /srv/oauth/store.db doctor",
                 "  tui-oauth COMMAND --help           (its options and examples)",
             ))
@click.option("--db", "db", metavar="URL", envvar="TUI_OAUTH_DB", show_envvar=True,
              help="The store: a SQLite file path, sqlite:///PATH or "
                   "postgresql+psycopg://USER@HOST/DB. Default: the user data directory.")
@click.option("--read-only", is_flag=True, help="Refuse every change.")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (never secrets).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, read_only: bool, verbose: int) -> None:
    """OAuth 1.0a administration: consumers, consumer info and service providers.

    Without a command, opens the console. Settings come from flags, then environment
    variables, then the config file (config.toml in the user config directory, or
    TUI_OAUTH_CONFIG; `tui-oauth doctor` says where).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(VisibleFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])
    if not isinstance(ctx.obj, AppContext):
        ctx.obj = AppContext(db, read_only)
    else:
        ctx.obj.db = db or ctx.obj.db
        ctx.obj.read_only = read_only or ctx.obj.read_only
    ctx.call_on_close(ctx.obj.close)
    if ctx.invoked_subcommand == "serve":
        ctx.default_map = {"serve": _serve_defaults()}
    if ctx.invoked_subcommand is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # Full-screen on a pipe or from cron would hang or spray escape codes.
            raise click.UsageError("The console needs a terminal; without one, give a "
                                   "command (see `tui-oauth --help`).")
        ctx.invoke(console)


def _serve_defaults() -> dict[str, Any]:
    """The config file's [serve] table, as click's defaults for `serve`: a flag or its
    TUI_OAUTH_SERVE_* variable still wins.  An unknown option there is an error."""
    from tui_oauth.cli.serve import serve
    from tui_oauth.core.config import ConfigError, load_config

    config = load_config()
    hint = "Its keys are serve's long option names (see `tui-oauth serve --help`)."
    options = {p.name: p for p in serve.params if isinstance(p, click.Option) and not p.hidden}
    unknown = sorted(set(config.serve) - set(options))
    if unknown:
        raise ConfigError(
            f"The config file {config.path} has unknown [serve] option(s): "
            f"{', '.join(n.replace('_', '-') for n in unknown)}.", hint=hint)
    ctx = click.Context(serve)
    for name, value in config.serve.items():  # said here, naming the file, not as a flag
        try:
            options[name].type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise ConfigError(f"In the config file {config.path}, [serve] "
                              f"{name.replace('_', '-')} = {value!r}: {exc.message}",
                              hint=hint) from None
    return dict(config.serve)


@needs_keyring
def console() -> None:
    from tui_oauth.cli.common import app_context
    from tui_oauth.cli.console_log import console_logging
    from tui_oauth.core.config import resolve_db_url
    from tui_oauth.tui import run_console
    from tui_oauth.tui.pending import PendingStore

    # The store opens behind the first screen (tui/pending.py); if it cannot, the
    # console closes and the error is said here, as for any command.
    obj = app_context()
    pending = PendingStore(lambda: obj.store, url=resolve_db_url(obj.db),
                           read_only=obj.read_only)
    with console_logging():  # stderr would paint over the screen
        run_console(pending)


SHELLS = ("bash", "zsh", "fish")


@cli.command(epilog=examples(
    '  bash: eval "$(tui-oauth completion bash)"    (in ~/.bashrc)',
    '  zsh:  eval "$(tui-oauth completion zsh)"     (in ~/.zshrc)',
    "  fish: tui-oauth completion fish > ~/.config/fish/completions/tui-oauth.fish",
))
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish): it completes
    commands, options, their values, consumer keys and provider names from the store."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # one of SHELLS
    click.echo(cls(cli, {}, "tui-oauth", "_TUI_OAUTH_COMPLETE").source())


#: Command name -> (module, attribute).  A command's module (and what it needs: the
#: database layer alone costs ~350 ms) is imported only when that command runs or its
#: help is asked for, so `--version`, `--help` and `keyring status` answer at once.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "consumers": ("tui_oauth.cli.consumers", "consumers",
                  "Applications allowed to use our resources."),
    "info": ("tui_oauth.cli.info", "info",
             "Our Consumer Info: key, name, key pair (created on first use)."),
    # provider_connect adds connect/call/tokens/forget/test to the providers group.
    "providers": ("tui_oauth.cli.provider_connect", "providers",
                  "Service providers whose resources we consume."),
    "audit": ("tui_oauth.cli.admin", "audit", "The audit log, newest first."),
    "doctor": ("tui_oauth.cli.admin", "doctor",
               "Check the store: location, permissions, keyring, orphans."),
    "db": ("tui_oauth.cli.admin", "db", "The database itself: init, upgrade, vacuum."),
    "tokens": ("tui_oauth.cli.tokens", "tokens",
               "Tokens issued to consumers: list, revoke, purge, authorize."),
    "settings": ("tui_oauth.cli.tokens", "settings",
                 "Provider settings: token lifetimes, timestamp window, problem detail."),
    "serve": ("tui_oauth.cli.serve", "serve", "Run the OAuth 1.0a provider over HTTP."),
    "keyring": ("tui_oauth.cli.keyring_cmd", "keyring_group",
                "The private keyring session: status, lock, stop; the provider data key."),
    "export": ("tui_oauth.cli.transfer", "export_cmd",
               "Write the configuration as JSON (secrets encrypted, or left out)."),
    "import": ("tui_oauth.cli.transfer", "import_cmd",
               "Apply an export, or consumer-info XML documents, in one transaction."),
    "refusals": ("tui_oauth.cli.refusals", "refusals",
                 "Requests the provider refused: when, who, the problem, advice."),
    "debug": ("tui_oauth.cli.debug", "debug",
              "Why a consumer is refused: check a request's signature (debug signature)."),
    "completion": ("tui_oauth.cli", "completion",
                   "Print the shell completion script: bash, zsh or fish."),
}


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="tui-oauth")


if __name__ == "__main__":
    main(sys.argv[1:])
