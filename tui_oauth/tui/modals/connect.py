"""Connect to a service provider: a request token, the URL to approve it, the verifier.

The request token is asked for in the background as the dialog opens; the
authorization URL is shown (and copied with OSC 52 on ``ctrl+y``); the operator
approves in any browser, types the verifier the provider shows, and ``enter``
exchanges it for an access token held for the local user.  Failures are said in
words: under the verifier when the exchange fails, in the dialog when the
request token could not be had.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, Static

from tui_oauth.core.errors import ValidationError
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import ConnectStep, HeldTokenInfo, default_local_user
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.styles import DIALOG, sheets
from tui_oauth.tui.text import error_text, plain
from tui_oauth.tui.widgets.field import Field


class ConnectModal(Dialog[HeldTokenInfo | None]):
    """Dismisses with the held token's info once connected, None when cancelled.
    ``ctrl+s`` (and ``enter`` in a field) exchanges the verifier; ``Esc`` cancels."""

    CSS_PATH = [*DIALOG, *sheets("modals/connect.tcss")]
    BINDINGS = [
        *dialog_bindings("connect", "Connect",
                         "Exchange the verifier for an access token",
                         cancel_tip="Stop here (the request token is left to expire)"),
        Binding("ctrl+y", "copy_url", "Copy URL", id="connect.copy_url",
                tooltip="Copy the authorization URL to the clipboard (OSC 52, works over SSH)"),
    ]

    def __init__(self, provider: str, local_user: str | None = None) -> None:
        super().__init__()
        self.provider = provider
        self.local_user = local_user or default_local_user()
        self.step: ConnectStep | None = None
        self.exchanging = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="connect-dialog"):
            yield Label(plain(f"Connect to {self.provider}"), classes="dialog-title")
            with dialog_body():
                yield Static("Asking the provider for a request token…", id="connect-status",
                             markup=False)
                yield Static("", id="connect-url", markup=False)
                yield Field("verifier", "Verifier", Input(
                    id="verifier", disabled=True, placeholder="the code shown after approving"))
                yield Field("local_user", "Local user (whose token this is)",
                            Input(self.local_user, id="local-user"))
            with dialog_buttons():
                yield Button("Copy URL", id="copy", disabled=True)
                yield Button("Connect", id="connect", variant="primary", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        store, name = store_of(self), self.provider
        run_job(self, lambda: services(store).consumer_side.request_token(name), self._got_step,
                doing="Asking for a request token", group="connect",
                loading=self.query_one("#connect-url"), failed=self._step_failed)

    def _got_step(self, step: ConnectStep) -> None:
        self.step = step
        self.query_one("#connect-status", Static).update(plain(
            "Open this URL in any browser, sign in to the provider and approve; then type "
            "the verifier it shows and press enter (ctrl+y copies the URL):"))
        self.query_one("#connect-url", Static).update(plain(step.authorization_url))
        for wid in ("#verifier", "#copy", "#connect"):
            self.query_one(wid).disabled = False
        self.query_one("#verifier", Input).focus()

    def _step_failed(self, exc: Exception) -> bool:
        self.query_one("#connect-status", Static).update(plain(
            f"No request token: {error_text(exc)} (Esc closes; then c tries again.)"))
        self.query_one("#connect-status").add_class("-error")
        self.query_one("#connect-url").display = False
        return True

    def action_copy_url(self) -> None:
        if self.step is not None:
            self.app.copy_to_clipboard(self.step.authorization_url)
            self.notify("Authorization URL copied to the clipboard.", markup=False)

    def action_primary(self) -> None:
        self._exchange()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "copy":
            self.action_copy_url()
        elif event.button.id == "connect":
            self._exchange()
        else:
            self.dismiss(None)

    def _exchange(self) -> None:
        step = self.step
        if step is None or self.exchanging:
            return
        verifier = self.query_one("#verifier", Input).value
        user = self.query_one("#local-user", Input).value.strip()
        field = self.query_one("#field-verifier", Field)
        if not verifier.strip():
            field.show_error("Type the verifier the provider showed after you approved.")
            return
        if not user:
            self.query_one("#field-local_user", Field).show_error(
                "Name the local user this token is for.")
            return
        field.show_error(None)
        self.query_one("#field-local_user", Field).show_error(None)
        self.exchanging = True
        self.query_one("#connect-status", Static).update(plain(
            "Exchanging the verifier for an access token…"))
        store = store_of(self)
        run_job(self, lambda: services(store).consumer_side.exchange(step, verifier, user),
                self._done,
                doing="Exchanging the verifier", group="connect",
                loading=self.query_one("#connect-url"), failed=self._exchange_failed)

    def _done(self, info: HeldTokenInfo) -> None:
        self.exchanging = False
        self.dismiss(info)

    def _exchange_failed(self, exc: Exception) -> bool:
        self.exchanging = False
        self.query_one("#connect-status", Static).update(plain(
            "The exchange failed; fix what is said under the field, or connect again "
            "(Esc) for a new request token."))
        name = exc.field if isinstance(exc, ValidationError) else None
        target = "local_user" if name in ("local_user", "user") else "verifier"
        self.query_one(f"#field-{target}", Field).show_error(error_text(exc))
        return True
