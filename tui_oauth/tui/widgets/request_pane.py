"""A small request pane: call a service provider with a held token and read the answer.

Method, URL (a path such as ``/rest/whoami`` is taken relative to the provider's
request-token URL) and an optional body: ``key=value`` lines sent as a signed form,
or JSON or text sent as is.  The answer's status, headers and body (pretty JSON
when it is JSON) show underneath, scrollable.  Everything from the provider is
shown as text (``plain``): never markup, control characters escaped.
"""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Select, Static, TabbedContent, TextArea

from tui_oauth.core.errors import NotFoundError
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import CallResponse
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.text import error_text, plain

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
BODY_KINDS = (("form", "form"), ("JSON", "json"), ("text", "text"))
#: Past this many characters the body shown is cut (the whole was received).
SHOW_LIMIT = 256 * 1024
READ_ONLY_CALL = ("read-only: refused. A call may renew the held token (a change), and this "
                  "console opened the store read-only.")


def parse_form(text: str) -> list[tuple[str, str]]:
    """``key=value`` lines (blank lines skipped) as form pairs; ValueError says which line."""
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Line {n} of the body is not key=value: form fields are one "
                             "key=value per line (or choose JSON or text to send it as is).")
        pairs.append((key.strip(), value))
    return pairs


def pretty_body(resp: CallResponse) -> str:
    """The body as text: JSON indented when it is JSON, otherwise UTF-8 (bad bytes replaced)."""
    text = resp.body.decode("utf-8", errors="replace")
    ctype = resp.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            text = "(not valid JSON, shown as it came)\n" + text
    if len(text) > SHOW_LIMIT:
        text = text[:SHOW_LIMIT] + f"\n… (cut here: the body has {len(text)} characters)"
    return text


def status_line(resp: CallResponse) -> str:
    words = [f"{resp.status} {resp.reason}".strip()]
    if resp.problem:
        words.append(f"the provider refused: {resp.problem}"
                     + (f" ({resp.advice})" if resp.advice else ""))
        if resp.problem in ("token_expired", "token_rejected", "token_revoked",
                            "permission_denied"):
            words.append("connect again (c) for a new token")
    if resp.renewed:
        words.append("the held token was renewed first")
    if resp.truncated:
        words.append(f"body cut at {len(resp.body)} bytes (size limit)")
    return " · ".join(words)


class RequestPane(ReadOnlyGuard, Vertical):
    """Calls ``services(store).consumer_side.call`` for ``provider`` as ``local_user``."""

    CHANGES = frozenset({"send"})  # a call may renew the held token

    class Called(Message):
        """A call was answered (the held token may have been used or renewed)."""

        def __init__(self, provider: str, status: int, renewed: bool) -> None:
            super().__init__()
            self.provider = provider
            self.status = status
            self.renewed = renewed

    BINDINGS = [
        Binding("ctrl+enter", "send", "Send", id="request.send",
                tooltip="Send the request, signed with the held token (also enter in the URL)"),
        Binding("escape", "leave", "Leave the pane", id="request.leave", show=False,
                tooltip="Stop typing here: back to the tabs (Esc again goes back)"),
    ]

    def __init__(self, provider: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.provider = provider
        self.local_user: str | None = None
        self.response: CallResponse | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="request-line"):
            yield Select([(m, m) for m in METHODS], value="GET", allow_blank=False,
                         id="method")
            yield Input(placeholder="/rest/whoami or https://…", id="url")
            yield Button("Send", id="send", variant="primary")
        with Horizontal(id="request-body-line"):
            yield Select(list(BODY_KINDS), value="form", allow_blank=False, id="body-kind")
            yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
        yield Static("", id="request-as", markup=False)
        yield Static("No request sent yet.", id="response-status", markup=False)
        with VerticalScroll(id="response", can_focus=True):
            yield Static("", id="response-headers", markup=False)
            yield Static("", id="response-body", markup=False)

    def on_mount(self) -> None:
        self.set_local_user(self.local_user)

    def set_local_user(self, user: str | None) -> None:
        self.local_user = user
        who = f"{user}'s" if user else "yours (none selected)"
        self.query_one("#request-as", Static).update(plain(
            f"Token: {who} · body: key=value lines (form), JSON or text"))

    def focus_url(self) -> None:
        self.query_one("#url", Input).focus()

    # Sending --------------------------------------------------------------

    def action_send(self) -> None:
        self.send()

    def action_leave(self) -> None:
        tabs = self.screen.query(TabbedContent)
        if tabs:
            tabs.first().query_one("Tabs").focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.send()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            event.stop()
            self.send()

    def _say(self, text: str, *, error: bool = True) -> None:
        status = self.query_one("#response-status", Static)
        status.update(plain(text))
        status.set_class(error, "-error")

    def send(self) -> None:
        store = store_of(self)
        if store.read_only:
            self._say(READ_ONLY_CALL)
            return
        method = str(self.query_one("#method", Select).value)
        url = self.query_one("#url", Input).value.strip()
        if not url:
            self._say("Type a URL first: a path such as /rest/whoami (taken relative to the "
                      "provider's request-token URL) or a full https:// URL.")
            self.focus_url()
            return
        kind = str(self.query_one("#body-kind", Select).value)
        text = self.query_one("#body", TextArea).text
        data: list[tuple[str, str]] | None = None
        body: bytes | None = None
        headers: list[tuple[str, str]] = []
        if text.strip():
            if kind == "form":
                try:
                    data = parse_form(text)
                except ValueError as exc:
                    self._say(str(exc))
                    return
            else:
                body = text.encode("utf-8")
                headers.append(("Content-Type", "application/json" if kind == "json"
                                else "text/plain; charset=utf-8"))
        provider, user = self.provider, self.local_user
        self._say(f"{method} {url} …", error=False)

        def work() -> CallResponse:
            return services(store).consumer_side.call(provider, method, url, data=data, body=body,
                                                      headers=headers, local_user=user)

        run_job(self, work, self._show, doing="Calling the provider", group="call",
                loading=self.query_one("#response"), failed=self._failed)

    def _failed(self, exc: Exception) -> bool:
        said = error_text(exc)
        if isinstance(exc, NotFoundError) and "No token is held" in exc.message:
            said = f"{exc.message} Connect first: Esc, then c."
        self._say(f"The call failed: {said}")
        self.query_one("#response-headers", Static).update("")
        self.query_one("#response-body", Static).update("")
        return True

    def _show(self, resp: CallResponse) -> None:
        self.response = resp
        self._say(status_line(resp), error=resp.status >= 400)
        self.query_one("#response-headers", Static).update(plain(
            "\n".join(f"{k}: {v}" for k, v in resp.headers)))
        self.query_one("#response-body", Static).update(plain(pretty_body(resp)))
        self.query_one("#response", VerticalScroll).scroll_home(animate=False)
        self.post_message(self.Called(self.provider, resp.status, resp.renewed))
