"""The console: Atlassian's OAuth Administration page, keyboard-driven, over SSH.

:func:`make_app` builds it on an open store (the CLI and the tests call it).
Everything that touches the store runs in workers (:mod:`tui_oauth.tui.jobs`);
failures come back here as :class:`WorkFailed` and become a notification (a
known error, in words) or a dialog (anything else), never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.driver import Driver
from textual.message_pump import MessagePump
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from tui_oauth.core.errors import StoreGoneError, TuiOAuthError, ValidationError
from tui_oauth.core.text import visible
from tui_oauth.core.validation import control_problem
from tui_oauth.tui import commands, textual_fixes  # noqa: F401  (applied on import)
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.messages import (
    ConsumerInfoChanged,
    ConsumerRemoved,
    ConsumerSaved,
    ExportWritten,
    ProviderRemoved,
    ProviderSaved,
    SecretRevealed,
    TokensRevoked,
    WorkFailed,
)
from tui_oauth.tui.pending import PendingStore
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.styles import FIRST_SCREEN
from tui_oauth.tui.text import error_text, plural
from tui_oauth.tui.watch import install_store_watch

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
KEYMAP_ENV = "TUI_OAUTH_KEYMAP"
# How long a key typed ahead may wait for the one before it (and the screen it opened).
KEY_DEADLINE = 3.0
# App-level letters: they act only where no form could want the key.
LETTER_ACTIONS = frozenset({"leave", "help", "audit", "refusals"})

# The form screens, dialogs and form controls are imported where first used, after the
# first paint (with the tables of the detail screens: ~15 ms of imports that the first
# screen does without; benchmarks/startup.py).  Until their module is loaded, no screen
# or widget of theirs can exist: _loaded() answers isinstance questions without
# importing.
FORM_CONTROLS = (("textual.widgets._input", "Input"), ("textual.widgets._text_area", "TextArea"),
                 ("textual.widgets._checkbox", "Checkbox"), ("textual.widgets._select", "Select"),
                 ("textual.widgets._button", "Button"),
                 ("textual.widgets._radio_button", "RadioButton"),
                 ("textual.widgets._switch", "Switch"))


def _loaded(*names: tuple[str, str]) -> tuple[type, ...]:
    """The classes named (module, class) whose module is already imported."""
    found = []
    for module, name in names:
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


FORM_SCREEN = ("tui_oauth.tui.screens.form", "FormScreen")


def keymap_from_env(value: str | None, problems: list[str] | None = None) -> dict[str, str]:
    """``TUI_OAUTH_KEYMAP="consumers.add=A;app.quit=ctrl+q"``: binding id = keys.
    An item that is not ``id=keys`` is left out, and said in ``problems``."""
    keymap: dict[str, str] = {}
    for item in (value or "").split(";"):
        binding_id, sep, keys = item.partition("=")
        if sep and binding_id.strip() and keys.strip():
            keymap[binding_id.strip()] = keys.strip()
        elif item.strip() and problems is not None:
            why = ("it has no \"=\"" if not sep else "the id is missing"
                   if not binding_id.strip() else "no key is given")
            problems.append(f'"{item.strip()}": {why}; write id=keys, e.g. consumers.add=A')
    return keymap


def configured_keymap(problems: list[str]) -> dict[str, str]:
    """The config file's [keymap], then ``TUI_OAUTH_KEYMAP`` over it (the environment
    overrides the file, id by id)."""
    from tui_oauth.core.config import ConfigError, load_config

    try:
        keymap = dict(load_config().keymap)
    except ConfigError as exc:
        problems.append(str(exc))
        keymap = {}
    from_env: list[str] = []
    keymap = {**keymap, **keymap_from_env(os.environ.get(KEYMAP_ENV), from_env)}
    problems += [f"{KEYMAP_ENV}: {p}" for p in from_env]
    return keymap


def unknown_ids(keymap: dict[str, str], problems: list[str]) -> dict[str, str]:
    """``keymap`` without the ids no binding has, each said in ``problems``."""
    known = commands.binding_ids()
    for binding_id, keys in keymap.items():
        if binding_id not in known:
            problems.append(f'"{binding_id}={keys}": no key binding has the id "{binding_id}"; '
                            "ids are listed in the help (?)")
    return {k: v for k, v in keymap.items() if k in known}


class OAuthAdminApp(App[None]):
    TITLE = "OAuth Administration"
    CSS_PATH = FIRST_SCREEN  # the other screens load their own (tui/styles.py)
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "leave", "Quit", id="app.quit", tooltip="Leave the console"),
        Binding("question_mark", "help", "Help", id="app.help",
                tooltip="Every key of this screen"),
        Binding("f1", "help_anywhere", "Help", id="app.help_anywhere", show=False,
                tooltip="Every key of this screen, in a form too (where ? is text)"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.command_palette",
                priority=True, show=False, tooltip="Every action by name"),
        Binding("l", "audit", "Audit", id="app.audit",
                tooltip="The audit log: every change, newest first"),
        Binding("exclamation_mark", "refusals", "Refusals", id="app.refusals",
                tooltip="Refused requests, newest first, with advice (from a consumer's "
                        "view: its own)"),
    ]

    def __init__(self, store: Store | PendingStore, *,
                 keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        #: a PendingStore until it is open (see tui/pending.py), then the Store
        self.store: Any = store
        self.store_ready = not isinstance(store, PendingStore)
        self.open_error: BaseException | None = None
        self.sub_title = store.display_url + ("  READ-ONLY" if store.read_only else "")
        self._initial_keymap = keymap
        # Keys (and pastes) typed ahead wait here while the key before them is still
        # being handled.
        self._keys_ahead: deque[events.Key | events.Paste] = deque()
        self._key_in_flight: events.Key | events.Paste | None = None
        self._key_timer: Timer | None = None
        self._key_screen: Screen[Any] | None = None
        self._key_waits = 0
        #: an action chosen by name (the palette): not a typed letter (commands.by_name)
        self.by_name = False

    def on_mount(self) -> None:
        keymap = self._initial_keymap
        problems: list[str] = []
        if keymap is None:
            keymap = configured_keymap(problems)
        if keymap:
            keymap = unknown_ids(keymap, problems)
            self.set_keymap(keymap)
        if problems:
            title = ("Keys not remapped" if not keymap
                     else f"{plural(len(problems), 'keymap item')} not applied (the others are)")
            self.notify("\n".join(problems), title=title,
                        severity="warning", timeout=20, markup=False)
        self.push_screen(MainScreen(id="main"))
        if self.store_ready:
            install_store_watch(self)  # the screens keep up with changes made elsewhere
        else:
            self.call_after_refresh(self._open_store)  # the first screen painted first

    def _open_store(self) -> None:
        pending = self.store

        def work() -> None:
            try:
                store = pending.open()
            except BaseException as exc:  # said by the CLI after the console closed
                with suppress(RuntimeError):
                    self.call_from_thread(self._store_failed, exc)
                return
            with suppress(RuntimeError):
                self.call_from_thread(self._store_opened, store)

        self.run_worker(work, name="Opening the store", group="open-store", thread=True,
                        exit_on_error=False)

    def _store_opened(self, store: Store) -> None:
        self.store = store
        self.store_ready = True
        install_store_watch(self)
        with suppress(LookupError):
            self.main.store_opened()

    def _store_failed(self, exc: BaseException) -> None:
        self.open_error = exc
        self.exit(return_code=1)

    @property
    def main(self) -> MainScreen:
        for s in self.screen_stack:
            if isinstance(s, MainScreen):
                return s
        raise LookupError("the main screen is not open")

    # Keys -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LETTER_ACTIONS and self.letters_are_input():
            return False  # typed in a form, a letter is text or nothing
        # No audit view on top of the audit view, no refusals on top of the refusals.
        return not ((action == "audit" and getattr(self.screen, "IS_AUDIT", False))
                    or (action == "refusals" and getattr(self.screen, "IS_REFUSALS", False)))

    async def run_action(self, action: Any, default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """A change refused by ``--read-only`` says so, whichever key asked for it."""
        target, name, params = self._parse_action(
            action, self if default_namespace is None else default_namespace, namespaces)
        if (isinstance(target, ReadOnlyGuard) and name in target.CHANGES
                and target.check_action(name, params) is None):
            self.notify(commands.READ_ONLY_REFUSAL, severity="warning", markup=False)
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def letters_are_input(self) -> bool:
        """In a form, or with a form control focused, app letters do nothing (typed;
        chosen by name in the palette, they act)."""
        return not self.by_name and (isinstance(self.screen, _loaded(FORM_SCREEN))
                or isinstance(self.focused, _loaded(*FORM_CONTROLS)))

    def action_leave(self) -> None:
        """``q``: quit (only where no form could want the letter)."""
        self.run_worker(self.action_quit(), exclusive=True, group="quit")

    async def action_quit(self) -> None:
        """Quit; with a changed form open (``ctrl+q``), ask "discard changes?" first."""
        from tui_oauth.tui.screens.form import FormScreen
        changed = next((s for s in reversed(self.screen_stack)
                        if isinstance(s, FormScreen) and s.changed), None)
        if changed is None or isinstance(self.screen, ModalScreen):
            if changed is None:
                self.exit()
            return
        changed.ask_discard(self.exit)

    def action_help(self) -> None:
        from tui_oauth.tui.modals.help import HelpModal

        if isinstance(self.screen, HelpModal):
            return
        self.push_screen(HelpModal(commands.entries(self, self.screen), self.store.read_only))

    def action_help_anywhere(self) -> None:
        """``F1``: the help, even where ``?`` is text."""
        self.action_help()

    def action_audit(self) -> None:
        from tui_oauth.tui.screens.audit import AuditScreen  # the models: ~350 ms

        if not isinstance(self.screen, AuditScreen):
            self.push_screen(AuditScreen())

    def action_refusals(self) -> None:
        """``!``: the refused requests; from a consumer's view, that consumer's."""
        from tui_oauth.tui.screens.refusals import RefusalsScreen  # loaded when first used

        consumer = getattr(self.screen, "refusals_of", None)
        self.push_screen(RefusalsScreen(consumer if isinstance(consumer, str) else None))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from commands.system_commands(self, screen)
        yield from super().get_system_commands(screen)

    # Text from outside: never markup, nothing raw, no control character pasted ----

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text: a consumer key such as ``mk[/b]`` or
        ``[@click=app.quit]`` is shown as written, never read as markup (``markup``
        is ignored), and control characters show as escapes."""
        super().notify(visible(message, multiline=True), title=visible(title),
                       severity=severity, timeout=timeout, markup=False)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, reading a bracketed paste whole (an ESC in it is text, to
        refuse) and ESC + digit as Alt+digit, not a Mac symbol (see ``_esc_then_key``)."""
        from tui_oauth.tui.widgets.terminal_input import reading_whole_pastes

        return reading_whole_pastes(super().get_driver_class())

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded:
            self._keys_ahead.append(event)
            if self._key_in_flight is None:
                await self._next_key()
            return
        await super().on_event(event)

    # Keys typed ahead -------------------------------------------------------
    #
    # Textual forwards every key to the widget focused when the key *arrives*, but a
    # key's bindings run only once it has bubbled back up to the app.  A burst such as
    # `/jira` would thus reach the list before `/` has opened the filter.  So one key
    # is in flight at a time: the next is forwarded only after the previous one was
    # handled (stopped by a widget, or back at the app with its binding run) and
    # what that deferred (a ``focus()``) has run.  A paste waits its turn too, and is
    # checked against the field it then lands in.

    async def _next_key(self) -> None:
        while self._keys_ahead and self._key_in_flight is None:
            event = self._keys_ahead.popleft()
            if isinstance(event, events.Paste):
                event.text = self._checked_paste(event.text)
                if not event.text:
                    continue
            elif split := self._esc_then_key(event):
                self._keys_ahead.extendleft(reversed(split))
                continue
            target: MessagePump = self.focused or self.screen
            self._key_in_flight = event
            self._key_screen = self.screen
            self._key_waits = 0
            # A safety net only (a key always ends in _key_done): generous, because a
            # loaded machine can take over a second to mount the screen a key opened.
            self._key_timer = self.set_timer(KEY_DEADLINE, lambda e=event: self._key_done(e))
            await super().on_event(event)  # a priority binding, or forwarded to target
            if event.is_forwarded:
                self._follow_key(event, target, target)
            else:
                self.call_later(self._key_done, event)

    def _follow_key(self, event: events.Key | events.Paste, node: MessagePump, target: MessagePump,
                    *, last_pass: bool = False) -> None:
        """Once ``node`` has handled ``event``, follow it to the parent, up to where it
        stopped (or the app).  Then a last pass from ``target`` up to the app lets the
        messages the key posted (an Input's ``Submitted``) bubble to their handlers;
        ``_key_done`` is queued on the app after anything deferred on the way."""
        def handled() -> None:
            if event is not self._key_in_flight:
                return
            parent = node._parent
            # A key whose sender is the app is "stopped" at the screen, and still
            # bubbles to the app: follow it there.
            stopped = event._stop_propagation and parent is not self
            if node is self or parent is None or (stopped and not last_pass):
                if last_pass or target is self or not target.is_attached:
                    self.call_later(self._key_done, event)
                else:
                    self._follow_key(event, target, target, last_pass=True)
            else:
                self._follow_key(event, parent, target, last_pass=last_pass)

        if not node.call_later(handled):
            self.call_later(self._key_done, event)  # the widget went away meanwhile

    async def _key_done(self, event: events.Key | events.Paste) -> None:
        if event is not self._key_in_flight:
            return
        screen = self.screen
        if screen is not self._key_screen:
            # The key opened (or closed) a screen: the next key waits for it to be
            # mounted and for what it focused on mount (``focus()`` is deferred), and
            # for what it says it needs first (a form: the values it opened with, or
            # keys typed ahead would count as those, and Esc would not ask).
            ready = screen.is_mounted and getattr(screen, "takes_keys", True)
            if not ready and self._key_waits < KEY_DEADLINE / 0.005:
                self._key_waits += 1
                self.set_timer(0.005, lambda: self._key_done(event))
                return
            self._key_screen = screen
            self.call_later(self._key_done, event)
            return
        self._key_in_flight = None
        if self._key_timer is not None:
            self._key_timer.stop()
            self._key_timer = None
        await self._next_key()

    def _esc_then_key(self, event: events.Key) -> tuple[events.Key, events.Key] | None:
        """Alt+key, where no binding takes it, as Esc followed by the key.

        A terminal sends Alt+3 as ESC ``3``, the bytes a fast Esc then ``3`` sends (a
        slow SSH link delivers keys in bursts).  The console binds no Alt key, so it
        reads an Alt+key that nothing here binds (a remapped key may) the way vi does:
        as Esc, then the key.  That is safe: Esc only clears, leaves or cancels (a
        changed form asks first, No focused), and every change asks before it is made,
        so neither key can lose work.  (In a field, an Alt+letter used to type the
        letter; it now leaves the form, as Esc then the letter would.)"""
        key, character = event.key, event.character
        if (not key.startswith("alt+") or character is None or len(character) != 1
                or not character.isprintable() or key in self.screen.active_bindings):
            return None
        rest = key.removeprefix("alt+")
        if rest.startswith("shift+") and character.isupper():
            rest = character  # alt+shift+a: Esc, then A
        return events.Key("escape", "\x1b"), events.Key(rest, character)

    def _checked_paste(self, text: str) -> str:
        """What a paste may put into the focused field: the text without a trailing line
        break, or nothing when it holds control characters or (in a one-line field)
        several lines.  The refusal is said under the field (validation's words), so a
        pasted escape sequence is never stored, shown raw, or cut short in silence."""
        focused = self.focused
        from tui_oauth.tui.widgets.field import Field

        multiline = isinstance(focused, _loaded(("textual.widgets._text_area", "TextArea")))
        # Terminals paste a line break as \r (xterm, VTE, tmux), some as \r\n or \n.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not multiline:
            text = text.rstrip("\n")
        problem = control_problem(text, label="The pasted text", multiline=multiline)
        if problem is None:
            return text
        problem += " Nothing was pasted."
        field = next((n for n in (focused.ancestors_with_self if focused else [])
                      if isinstance(n, Field)), None)
        if field is not None:
            field.show_error(problem)
        else:
            self.notify(problem, severity="warning", markup=False)
        return ""

    # The one error handler --------------------------------------------------

    @on(WorkFailed)
    def show_failure(self, event: WorkFailed) -> None:
        exc = event.error
        if isinstance(exc, StoreGoneError):
            # The store file was removed or replaced: the console stops, and the CLI says
            # why (README, "A store removed or replaced under a running program").
            self._store_failed(exc)
            return
        if isinstance(exc, TuiOAuthError):
            log.info("%s failed: %s", event.doing, exc)
            title = "Not valid" if isinstance(exc, ValidationError) else f"{event.doing} failed"
            self.notify(error_text(exc), title=title, severity="error", timeout=8, markup=False)
            return
        log.error("%s failed", event.doing, exc_info=exc)
        from tui_oauth.tui.modals.error import ErrorModal

        self.push_screen(ErrorModal(f"{event.doing} failed unexpectedly", error_text(exc)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Workers started on the app itself; run_job catches its own errors.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(WorkFailed(event.worker.error, event.worker.name or "Work"))

    # Workflow messages ------------------------------------------------------

    def _reload(self, *tabs: str) -> None:
        try:
            main = self.main
        except LookupError:
            return
        for tab in tabs:
            main.tab_widget(tab).reload()

    def on_consumer_saved(self, event: ConsumerSaved) -> None:
        self.notify(f"Consumer {event.key} {'added' if event.added else 'saved'}.",
                    markup=False)
        with suppress(LookupError):
            self.main.consumers.reload(select=event.key)

    def on_consumer_removed(self, event: ConsumerRemoved) -> None:
        self.notify(f"Consumer {event.key} removed with {plural(event.tokens, 'token')}.",
                    markup=False)
        self._reload("consumers")

    def on_tokens_revoked(self, event: TokensRevoked) -> None:
        self.notify(f"{plural(event.count, 'token')} of {event.consumer_key} revoked.",
                    markup=False)
        self._reload("consumers")

    def on_consumer_info_changed(self, event: ConsumerInfoChanged) -> None:
        self.notify("New key pair generated: give the new public key to every provider."
                    if event.what == "rotate" else "Consumer Info saved.",
                    severity="warning" if event.what == "rotate" else "information",
                    markup=False)
        self._reload("info")

    def on_provider_saved(self, event: ProviderSaved) -> None:
        self.notify(f"Service provider {event.name} {'added' if event.added else 'saved'}.",
                    markup=False)
        for warning in event.warnings:
            self.notify(warning, severity="warning", timeout=10, markup=False)
        with suppress(LookupError):
            self.main.providers.reload(select=event.name)

    def on_provider_removed(self, event: ProviderRemoved) -> None:
        self.notify(f"Service provider {event.name} removed "
                    f"with {plural(event.tokens, 'held token')}.", markup=False)
        self._reload("providers")

    def on_secret_revealed(self, event: SecretRevealed) -> None:
        log.info("secret of %s revealed", event.provider)

    def on_export_written(self, event: ExportWritten) -> None:
        self.notify(f"Wrote the {event.what} to {event.path}.", markup=False)


def make_app(store: Store | PendingStore, *,
             keymap: dict[str, str] | None = None) -> OAuthAdminApp:
    """The console on a store, open or opening (called by the CLI and by the tests)."""
    return OAuthAdminApp(store, keymap=keymap)
