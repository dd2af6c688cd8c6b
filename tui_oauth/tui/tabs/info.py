"""Consumer Info tab: who we are when we consume (our key, name and public key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from tui_oauth.core.registry import services
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ConsumerInfoChanged
from tui_oauth.tui.tabs.lazy import MountedWhenShown
from tui_oauth.tui.text import dash, error_text, field_rows, plain, when

if TYPE_CHECKING:  # the screens a key opens are imported when it is pressed
    from tui_oauth.core.services.consumer_info import ConsumerInfoView

ROTATE_WORD = "rotate"


class InfoTab(MountedWhenShown, ReadOnlyGuard, VerticalScroll):
    """Its seven widgets are mounted when the tab is first shown or read (show_content):
    they cost the first screen, where this tab is hidden, ~5 ms (benchmarks/startup.py)."""

    TITLE = "Consumer Info"
    CHANGES = frozenset({"edit", "rotate"})
    BINDINGS = [
        Binding("e", "edit", "Edit", id="info.edit",
                tooltip="Edit the name, description and callback URL"),
        Binding("x", "export", "Export", id="info.export",
                tooltip="Write the consumer-info XML (or the public key) to a file"),
        Binding("c", "copy_key", "Copy key", id="info.copy_key",
                tooltip="Copy the public key (PEM) to the clipboard (OSC 52, works over SSH)"),
        Binding("C", "copy_xml", "Copy XML", id="info.copy_xml",
                tooltip="Copy the consumer-info XML to the clipboard (OSC 52)"),
        Binding("K", "rotate", "New key pair", id="info.rotate",
                tooltip="Regenerate the key pair (asks first: providers must be told)"),
        Binding("j,down", "scroll_down", "Down", show=False, id="info.down",
                tooltip="Scroll down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="info.up", tooltip="Scroll up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="info.top", tooltip="Top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="info.bottom",
                tooltip="Bottom"),
    ]

    def __init__(self) -> None:
        super().__init__(id="info-tab", can_focus=True)
        self.view: ConsumerInfoView | None = None

    def _content(self) -> ComposeResult:
        yield Static("Loading the Consumer Info…", id="info-fields", markup=False)
        yield Label("Fingerprint (SHA-256 of the public key)", classes="section")
        yield Static("", id="info-fingerprint", markup=False)
        yield Label("Public key (PEM)", classes="section")
        yield Static("", id="info-pem", markup=False)
        yield Label("Public key (bare base64, as Atlassian applications take it)",
                    classes="section")
        yield Static("", id="info-base64", markup=False)

    def reload(self, *, quiet: bool = False) -> None:
        """Read the Consumer Info again; ``quiet`` (a change made elsewhere) keeps what
        is shown until the new one is read, with no loading indicator."""
        self.show_content()
        store = store_of(self)
        # The first view creates the record and its key pair (keyring): a worker.
        run_job(self, services(store).consumer_info.view, self._show,
                doing="Reading the Consumer Info",
                group="info", loading=None if quiet else self, failed=self._failed)

    def _failed(self, exc: Exception) -> bool:
        self.query_one("#info-fields", Static).update(
            plain(f"Cannot show the Consumer Info: {error_text(exc)}"))
        return False

    def _show(self, view: ConsumerInfoView) -> None:
        self.view = view
        i, pk = view.info, view.public_key
        rows = [
            ("Consumer key", i.key), ("Name", i.name), ("Description", dash(i.description)),
            ("Callback URL", dash(i.callback_url)),
            ("Public key", f"RSA {pk.bits} bits, created {when(i.key_created_at)}"),
        ]
        self.query_one("#info-fields", Static).update(plain(
            field_rows(rows, 14)
            + "\n\ne: edit · x: export · c: copy key · C: copy XML · K: new key pair"))
        self.query_one("#info-fingerprint", Static).update(plain(pk.fingerprint))
        self.query_one("#info-pem", Static).update(plain(pk.pem.strip()))
        self.query_one("#info-base64", Static).update(plain(pk.base64_der))

    # Actions ----------------------------------------------------------------

    def action_edit(self) -> None:
        from tui_oauth.tui.screens.info_form import InfoFormScreen

        if self.view is not None:
            self.app.push_screen(InfoFormScreen(self.view.info))

    def action_export(self) -> None:
        from tui_oauth.tui.modals.export import ExportModal  # cryptography: ~60 ms

        self.app.push_screen(ExportModal())

    def action_copy_key(self) -> None:
        if self.view is not None:
            self.app.copy_to_clipboard(self.view.public_key.pem)
            self.notify("Public key (PEM) copied to the clipboard.", markup=False)

    def action_copy_xml(self) -> None:
        store = store_of(self)

        def copy(xml: bytes) -> None:
            self.app.copy_to_clipboard(xml.decode("utf-8"))
            self.notify("Consumer-info XML copied to the clipboard.", markup=False)

        run_job(self, services(store).consumer_info.export_xml, copy, doing="Rendering the XML",
                group="copy")

    def action_rotate(self) -> None:
        if self.view is None:
            return
        store = store_of(self)
        body = (f"A new RSA key pair replaces the current one ({self.view.fingerprint}). "
                "Every application that added us by URL or was given our public key keeps "
                "the OLD key: requests we sign from now on fail there with "
                "signature_invalid until each one is given the new public key (re-add us "
                "by URL, or paste the new key). The old private key is deleted from the "
                "keyring; this cannot be undone.")

        def rotated(_: object) -> None:
            self.app.post_message(ConsumerInfoChanged("rotate"))

        def answered(yes: bool | None) -> None:
            if yes:
                run_job(self, services(store).consumer_info.rotate_key, rotated,
                        doing="Generating a new key pair", group="rotate", loading=self)

        from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal  # after first paint

        self.app.push_screen(TypedConfirmModal("Regenerate the key pair?", body, ROTATE_WORD,
                                               action="Regenerate"), answered)
