"""What the terminal sends, read as the user meant it: a bracketed paste whole, and Esc
then a digit as Esc then the digit (the console decides, tui/app.py).

Textual's parser (``textual._xterm_parser``) reads an ESC inside a bracketed paste as
the start of a key: ``Evil\\x1b[2Jname`` became the keys ``^[2Jname`` followed by a
paste of ``Evil``, so the console could neither refuse it nor keep its order.  And it
reads ESC followed by a digit, ``-``, ``=`` or ``§`` as the symbol a Mac keyboard's
Option key gives (``\\x1b3`` is ``£``), which a fast Esc then ``3`` (a slow SSH link,
tmux) sends too.  :class:`ConsoleParser` wraps that parser, character by character:
a paste's text goes around it and comes out whole, with every character it held, and
ESC + one of those characters comes out as Alt+that character, as ESC + a letter does,
and ESC + Enter as Esc then Enter (Textual's parser dropped the Esc).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from textual import events
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual._parser import ParseEOF, ParseTimeout, Peek1, Read1, TokenCallback
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.driver import Driver
from textual.message import Message

ESC = "\x1b"
# ESC + character -> the Mac Option symbol Textual reads it as ("3" -> "£").
OPTION_SYMBOLS = {seq[1]: keys for seq, keys in ANSI_SEQUENCES_KEYS.items()
                  if len(seq) == 2 and seq[0] == ESC and isinstance(keys, str)}


class ConsoleParser(XTermParser):
    """Textual's parser, with pastes kept whole and ESC + digit read as Alt+digit."""

    def parse(self, token_callback: TokenCallback[Message]
              ) -> Generator[Read1 | Peek1, str, None]:
        after_esc: str | None = None  # the character that followed an ESC, being read

        def on_token(token: Message) -> None:
            if isinstance(token, events.Paste):
                return  # its text went around the parser: said whole below
            if (after_esc is not None and isinstance(token, events.Key)
                    and token.character == OPTION_SYMBOLS[after_esc]):
                for key in self._sequence_to_key_events(after_esc, alt=True):
                    token_callback(key)
                return
            token_callback(token)

        inner = super().parse(on_token)
        request = next(inner)
        recent = ""  # the last characters given to the parser, to see a paste start
        pasted: list[str] | None = None
        while True:
            if pasted is not None:  # in a bracketed paste, every character is text
                try:
                    character = yield self.read1()
                except ParseEOF:
                    return
                pasted.append(character)
                if character == "~" and "".join(pasted[-6:]) == BRACKETED_PASTE_END:
                    text = "".join(pasted[:-6])
                    pasted, recent = None, ""
                    for end in BRACKETED_PASTE_END:  # the parser's own paste ends, empty
                        request = inner.send(end)
                    token_callback(events.Paste(text.replace("\x00", "")))
                continue
            try:
                character = yield request
            except (ParseTimeout, ParseEOF) as exc:
                recent = ""
                try:
                    request = inner.throw(exc)
                except StopIteration:
                    return
                continue
            after_esc = character if recent.endswith(ESC) and character in OPTION_SYMBOLS \
                else None
            if recent.endswith(ESC) and character == "\r":
                # Textual reads ESC + Enter as Enter alone: say the Esc first, as its
                # wait for more had run out (Alt+Enter means nothing here).
                request = inner.throw(ParseTimeout())
            request = inner.send(character)
            after_esc = None
            recent = (recent + character)[-len(BRACKETED_PASTE_START):]
            if recent == BRACKETED_PASTE_START:
                pasted = []


def reading_whole_pastes(driver: type[Driver]) -> type[Driver]:
    """``driver``, its input read by :class:`ConsoleParser` when it is Textual's Linux
    driver (which builds its parser from its module's ``XTermParser``); any other
    driver (headless tests, Windows, web) as it is."""
    from textual.drivers import linux_driver

    if driver is linux_driver.LinuxDriver:
        module: Any = linux_driver
        module.XTermParser = ConsoleParser
    return driver
