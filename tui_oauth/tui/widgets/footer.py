"""Textual's footer, fitted to the width: keys the screen already names give way.

Textual's footer lists every shown binding in one row and cuts what does not fit at
the right edge, where the app's keys are (``l`` Audit, ``!`` Refusals): at 80 columns
the Consumers tab lost both.  Here, when the keys do not fit, those whose key the
screen already says (the list's status line: ``s: sort  /: filter  enter: open``; the
tokens title: ``r: revoke  R: revoke all``; the public key's titles: ``c: copy``,
``b: copy``) leave the footer first, in ``GIVES_WAY`` order, only as many as needed;
then the app keys a screen spares (``FOOTER_SPARES``: a service provider's view needs
its own seven keys more than ``l`` and ``!``, which are about the store and our
consumers); then, if still too wide, the screen's other keys from the right (``Back``
last).  Otherwise the app's keys (``q``, ``?``, ``l``, ``!``: ``STAYS``) never leave.
Every key stays bound, and listed in the help (``?``) and the palette (ctrl+p).
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Actions that leave a footer too narrow for every key, first to last.
GIVES_WAY = ("sort", "filter", "open", "copy_base64", "copy_pem", "revoke_all", "revoke")
#: The app's keys, which the footer always shows.
STAYS = ("leave", "help", "audit", "refusals")
PALETTE_WIDTH = 13  # "▏^p Commands ", docked right


def key_width(key: FooterKey, compact: bool) -> int:
    """Cells a key takes (Textual's padding: `` k `` and ``Description ``)."""
    pad = 0 if compact else 2
    described = cell_len(key.description) + (0 if compact else 1) if key.description else 0
    return cell_len(key.key_display) + pad + described + (1 if compact else 0)


class SteadyFooter(Footer):
    """Textual's footer, recomposed only when what it shows changes.

    Textual's footer builds its keys anew whenever the screen's bindings may have
    changed: each focus change, each screen pushed or popped, each ``refresh_bindings``.
    Usually the same keys come back, and building and styling them cost the console
    ~7 ms a time (a form's Tab, a dialog opened and closed).  This one keeps its keys
    when everything its ``compose`` reads is as it was."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[Any, ...] | None = None

    def _what_it_shows(self) -> tuple[Any, ...]:
        """Everything ``compose`` reads (Textual's and FittingFooter's)."""
        if not self._bindings_ready:
            return ()
        app = self.app
        keys = tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action,
             binding.tooltip, None if binding.group is None
             else (id(binding.group), binding.group.description, binding.group.compact),
             enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == app.COMMAND_PALETTE_BINDING)
        return (keys, self.compact, self.show_command_palette, self.combine_groups,
                app.ENABLE_COMMAND_PALETTE, app.COMMAND_PALETTE_BINDING,
                self.size.width or app.size.width)

    def compose(self) -> ComposeResult:
        self._shown = self._what_it_shows()
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                # Born in its final style: a FooterKey starts compact, restyled, and the
                # keys bound to the footer's style (all but the palette's) turn not
                # compact, restyled again (a fifth of building a footer's keys).
                compact = widget.has_class("-command-palette") or self.compact
                widget.set_reactive(FooterKey.compact, compact)
                widget.set_class(compact, "-compact", update=False)
            yield widget

    async def recompose(self) -> None:
        if self.is_attached and self._shown is not None \
                and self._what_it_shows() == self._shown:
            return
        await super().recompose()


class FittingFooter(SteadyFooter):
    def __init__(self) -> None:
        super().__init__()
        self._fitted_width = 0

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        width = self.size.width or self.app.size.width
        self._fitted_width = width
        keys = [w for w in widgets if isinstance(w, FooterKey)
                and not w.has_class("-command-palette") and not w.has_class("-grouped")]
        # the last key's trailing space is not needed
        used = sum(key_width(k, self.compact) for k in keys) - 1 + PALETTE_WIDTH
        dropped: set[int] = set()
        # the screen's other keys from the right, then Back (escape)
        # a screen where the app's l and ! matter less than its own keys spares them
        spare: tuple[str, ...] = getattr(self.screen, "FOOTER_SPARES", ())
        rest = [k for k in reversed(keys) if k.action not in (*STAYS, *GIVES_WAY, "back")]
        order = [*(k for a in (*GIVES_WAY, *spare) for k in keys if k.action == a), *rest,
                 *(k for k in keys if k.action == "back")]
        for k in order:
            if used <= width:
                break
            if id(k) not in dropped:
                dropped.add(id(k))
                used -= key_width(k, self.compact)
        if dropped:
            self.styles.grid_size_columns = max(1, self.styles.grid_size_columns - len(dropped))
        yield from (w for w in widgets if id(w) not in dropped)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._fitted_width and self._bindings_ready:
            self.call_after_refresh(self.recompose)

