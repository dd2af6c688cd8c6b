"""Every action by name: the command palette and the `?` help read the same list.

The list is built from the bindings themselves (so a remapped key shows as
remapped), grouped by where they apply: the current screen, each tab of the
main page, the lists, and the app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from textual.actions import parse
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.markup import escape
from textual.screen import Screen

from tui_oauth.tui.widgets.virtual_table import VirtualTable

#: How, not a mode there is no switch for: the console is read-only only by the
#: command line's read-only option (named in words: no console text quotes a flag).
READ_ONLY_REFUSAL = ("read-only: refused. This console was started with the read-only "
                     "option; quit and start it again without that option to change it.")


@dataclass(frozen=True)
class Entry:
    section: str
    keys: str
    description: str
    tooltip: str
    node: DOMNode
    binding: Binding
    enabled: bool
    tab: str | None = None
    #: refused because the store is open read-only (not merely "not here")
    read_only: bool = False
    #: the keys that do it when typed on this screen (the help lists these): in a form
    #: ``q``, ``?``, ``l`` and ``!`` are text, so "Quit" is ``ctrl+q`` alone there and
    #: "Audit" has no key (the palette runs it by name). None: the same as ``keys``.
    typed_keys: str | None = None

    @property
    def help_keys(self) -> str:
        return self.keys if self.typed_keys is None else self.typed_keys


def _sections(app: App[Any], screen: Screen[Any]) -> list[tuple[str, DOMNode, str | None]]:
    from tui_oauth.tui.screens.main import MainScreen

    sections: list[tuple[str, DOMNode, str | None]] = []
    if isinstance(screen, MainScreen):
        active = screen.active_tab
        tabs = [(t, screen.tab_widget(t)) for t in ("consumers", "info", "providers")]
        tabs.sort(key=lambda t: t[0] != active)  # the tab in front first
        for tab, widget in tabs:
            sections.append((str(getattr(widget, "TITLE", tab)), widget, tab))
        sections.append(("Main page", screen, None))
    else:
        title = getattr(screen, "HELP_TITLE", None) or human_name(type(screen).__name__)
        sections.append((title, screen, None))
    from tui_oauth.tui.widgets.table import Table  # the detail screens' tables

    lists: list[DOMNode] = [*screen.query(VirtualTable), *screen.query(Table)]
    if lists:
        sections.append(("Lists", lists[0], None))
    sections.append(("Everywhere", app, None))
    return sections


def human_name(class_name: str) -> str:
    """``ConsumerFormScreen`` -> ``Consumer form`` (a screen without a HELP_TITLE)."""
    words = re.findall(r"[A-Z][a-z0-9]*", class_name.removesuffix("Screen").replace("Modal", ""))
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else class_name


@contextmanager
def by_name(app: App[Any], chosen: bool = True) -> Iterator[None]:
    """An action chosen by name (the palette, the help), not typed: the app's letter
    rule (no ``q`` or ``!`` while a form control has focus) is about typed keys, so it
    does not apply (``OAuthAdminApp.letters_are_input``). ``chosen=False``: typed."""
    before = getattr(app, "by_name", False)
    setattr(app, "by_name", chosen)  # noqa: B010 (an attribute of OAuthAdminApp)
    try:
        yield
    finally:
        setattr(app, "by_name", before)  # noqa: B010


#: the app's bindings without an id that do what one with an id does: Textual's
#: ``ctrl+q`` quits as ``q`` does (and works in a form, where ``q`` is text)
SAME_AS = {"quit": "leave"}


def entries(app: App[Any], screen: Screen[Any] | None = None) -> list[Entry]:
    """Every binding with an id that applies on ``screen``, one entry per action, its
    state judged as if chosen by name on ``screen`` (the palette's own input, focused
    while it is open, does not count)."""
    screen = screen or app.screen
    with by_name(app):
        return list(_entries(app, screen))


def _entries(app: App[Any], screen: Screen[Any]) -> Iterator[Entry]:
    read_only = bool(getattr(getattr(app, "store", None), "read_only", False))
    for section, node, tab in _sections(app, screen):
        by_action: dict[str, list[Binding]] = {}
        aliases: list[Binding] = []
        for _key, binding in node._bindings:
            if binding.system:
                continue
            if binding.id is None:
                if node is app and binding.action in SAME_AS:
                    aliases.append(binding)
                continue
            by_action.setdefault(binding.action, []).append(binding)
        for alias in aliases:  # after the keys with an id (the entry is theirs)
            if SAME_AS[alias.action] in by_action:
                by_action[SAME_AS[alias.action]].append(alias)
        for action, bindings in by_action.items():
            first = bindings[0]
            _, name, params = parse(action)
            state = node.check_action(name, params)
            keys = ", ".join(dict.fromkeys(app.get_key_display(b) for b in bindings))
            typed_keys = None
            if node is app and state is True:  # the letter rule: in a form, letters are text
                with by_name(app, chosen=False):
                    working = [b for b in bindings if _typed_works(node, b)]
                typed_keys = ", ".join(dict.fromkeys(app.get_key_display(b) for b in working))
            changes: frozenset[str] = getattr(node, "CHANGES", frozenset())
            yield Entry(section, keys, first.description or name, first.tooltip or "", node,
                        first, state is True, tab,
                        read_only=state is not True and read_only and name in changes,
                        typed_keys=typed_keys)


def _typed_works(node: DOMNode, binding: Binding) -> bool:
    _, name, params = parse(binding.action)
    return node.check_action(name, params) is True


def binding_ids() -> frozenset[str]:
    """The id of every binding the console's screens, dialogs and widgets declare
    (what ``TUI_OAUTH_KEYMAP`` may name)."""
    import importlib
    import pkgutil

    import tui_oauth.tui as package

    ids: set[str] = set()
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DOMNode):
                for binding in obj.__dict__.get("BINDINGS", []):
                    if isinstance(binding, Binding) and binding.id:
                        ids.add(binding.id)
    return frozenset(ids)


def invoke(app: App[Any], entry: Entry) -> Callable[[], None]:
    """A palette callback: switch to the entry's tab, then run its action (or say why not)."""

    def run() -> None:
        if entry.read_only:
            app.notify(READ_ONLY_REFUSAL, severity="warning", markup=False)
            return
        screen = app.screen
        if entry.tab is not None:
            show = getattr(screen, "action_show_tab", None)
            if show is not None:
                show(entry.tab)

        async def act() -> None:
            with by_name(app):
                await app.run_action(entry.binding.action, entry.node)

        app.call_later(act)

    return run


def system_commands(app: App[Any], screen: Screen[Any]) -> Iterator[SystemCommand]:
    for entry in entries(app, screen):
        if entry.section == "Lists" or entry.binding.action in {"command_palette", "help",
                                                              "help_anywhere"}:
            continue
        if not entry.enabled and not entry.read_only:
            continue  # does not apply here (nothing to copy, no refusal listed...)
        title = f"{entry.section}: {entry.description}"
        help_text = f"key {entry.keys} · {entry.tooltip}"
        if entry.read_only:
            help_text += " (refused: read-only)"
        yield SystemCommand(escape(title), escape(help_text), invoke(app, entry))
