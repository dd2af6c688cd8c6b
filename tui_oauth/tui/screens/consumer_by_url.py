"""Add a consumer by URL: fetch its consumer-info, show what was found, then confirm."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.widgets import Button, Checkbox, Input, Static

from tui_oauth.core.errors import FetchError
from tui_oauth.core.registry import services
from tui_oauth.core.services.consumers import ConsumerPreview
from tui_oauth.core.text import visible
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ConsumerSaved
from tui_oauth.tui.screens.consumer_form import key_summary, key_warnings
from tui_oauth.tui.screens.form import FormScreen
from tui_oauth.tui.text import dash, field_rows, plain
from tui_oauth.tui.widgets.field import Field

ALLOW_PRIVATE_LABEL = "Allow private addresses (an intranet server)"


class ConsumerByUrlScreen(FormScreen):
    BINDINGS = [
        Binding("ctrl+f", "fetch", "Fetch", id="by_url.fetch",
                tooltip="Fetch the consumer-info document from the URL"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.preview: ConsumerPreview | None = None

    def form_title(self) -> str:
        return "Add a consumer by URL"

    def save_label(self) -> str:
        return "Add this consumer"

    def compose_fields(self) -> ComposeResult:
        yield Field("url", "Base URL of the consumer application",
                    Input(id="url", placeholder="https://jira.example.com"),
                    hint="tui-oauth fetches URL/plugins/servlet/oauth/consumer-info; "
                         "enter fetches, then check what was found and add it.")
        with HorizontalGroup(id="fetch-row"):
            yield Button("Fetch", id="fetch")
            yield Checkbox(ALLOW_PRIVATE_LABEL, False, id="allow_private",
                           tooltip="Off: only public addresses are fetched from. On: loopback, "
                                   "private and link-local ones too (cloud metadata addresses "
                                   "stay refused).")
        yield Static("Nothing fetched yet.", id="preview", markup=False)

    def on_mount(self) -> None:
        self.query_one("#save", Button).disabled = True
        self.query_one("#url", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "url" and self.preview is not None:
            self._set_preview(None)

    # Textual calls these handlers in each class of the screen: prevent_default() keeps
    # the form's (save, cancel) from running after these.  Save and Cancel are the
    # form's alone.
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.prevent_default()  # enter fetches; the form's enter would save
        self.action_fetch()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fetch":
            event.stop()
            event.prevent_default()
            self.action_fetch()

    def action_fetch(self) -> None:
        self.clear_errors()
        self._set_preview(None)
        url = self.value("url")
        allow_private = self.query_one("#allow_private", Checkbox).value
        store = store_of(self)
        self.query_one("#preview", Static).update(plain(f"Fetching {url} …", multiline=False))
        consumers = services(store).consumers
        run_job(self, lambda: consumers.preview_from_url(url, allow_private=allow_private),
                self._set_preview,
                doing="Fetching the consumer-info", group="fetch",
                loading=self.query_one("#preview"),
                failed=lambda exc: self._fetch_failed(exc, allow_private))

    def _fetch_failed(self, exc: Exception, allow_private: bool) -> bool:
        self.query_one("#preview", Static).update("Nothing fetched.")
        refusal = getattr(exc, "refusal", None)  # FetchRefusedError: an address refused
        if (isinstance(exc, FetchError) and refusal is not None and refusal.allowable
                and not allow_private):
            exc = FetchError(f"{exc} If this server is on your intranet, tick "
                             f"'{ALLOW_PRIVATE_LABEL}' and fetch again.")
        return self.handle_failure(exc)

    def _set_preview(self, preview: ConsumerPreview | None) -> None:
        self.preview = preview
        save = self.query_one("#save", Button)
        text = self.query_one("#preview", Static)
        if preview is None:
            save.disabled = True
            text.update("Nothing fetched yet.")
            return
        # Everything here came from the network: each value is shown with visible().
        f, doc = preview.fetched, preview.fetched.doc
        pk = doc.public_key
        lines = [
            visible(f"Found at {f.final_url} (HTTP {f.status}, {f.content_type}, "
                    f"{f.elapsed:.2f} s)"),
            "",
            field_rows([("Consumer key :", doc.key), ("Name         :", doc.name),
                        ("Description  :", dash(doc.description)),
                        ("Callback URL :", dash(doc.callback)),
                        ("Public key   :", key_summary(pk)),
                        ("Fingerprint  :", pk.fingerprint)], 15),
        ]
        lines += [visible(w) for w in key_warnings(pk)]
        if preview.existing is not None:
            lines += ["", visible(f"A consumer with key {doc.key} already exists "
                                  f"({preview.existing.name}); remove it first or edit it.")]
        else:
            lines += ["", "Saved as an RSA-SHA1 consumer; press ctrl+s or 'Add this consumer'."]
        text.update(plain("\n".join(lines)))
        save.disabled = preview.existing is not None
        if not save.disabled:
            save.focus()

    def save(self) -> None:
        preview = self.preview
        if preview is None:
            self.action_fetch()
            return
        store = store_of(self)
        run_job(self, lambda: services(store).consumers.add_from_preview(preview).key, self._saved,
                doing="Adding the consumer", group="save",
                loading=self.query_one("#form-body"), failed=self.handle_failure)

    def _saved(self, key: str) -> None:
        self.app.post_message(ConsumerSaved(key, added=True))
        self.dismiss(None)
