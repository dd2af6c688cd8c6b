"""Export our Consumer Info to a file: the XML document, the PEM or the bare base64."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from tui_oauth.core.errors import FieldError, ValidationError
from tui_oauth.core.keys import describe
from tui_oauth.core.registry import services
from tui_oauth.core.validation import control_problem
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ExportWritten
from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import error_text, plain

FORMATS = [("consumer-info XML", "xml"), ("public key, PEM", "pem"),
           ("public key, bare base64", "base64")]
DEFAULT_NAMES = {"xml": "consumer-info.xml", "pem": "consumer-public-key.pem",
                 "base64": "consumer-public-key.txt"}


class ExportModal(Dialog[str | None]):
    """``ctrl+s`` (and ``enter`` in the file name) writes the file; ``Esc`` cancels."""

    BINDINGS = [
        *dialog_bindings("export", "Export", "Write the file", cancel_tip="Do nothing"),
    ]
    PRIMARY_BUTTON = "export"

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__()
        self.directory = directory or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export our Consumer Info", classes="dialog-title")
            with dialog_body():
                yield Select(FORMATS, value="xml", allow_blank=False, id="format")
                yield Input(str(self.directory / DEFAULT_NAMES["xml"]), id="path")
                yield Checkbox("Overwrite if the file exists", False, id="overwrite")
                yield Static("", id="export-error", classes="field-error", markup=False)
            with dialog_buttons():
                yield Button("Export", id="export", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        current = Path(path.value)
        if current.name in DEFAULT_NAMES.values():
            path.value = str(current.with_name(DEFAULT_NAMES[str(event.value)]))

    def action_primary(self) -> None:
        self.export()

    def export(self) -> None:
        store = store_of(self)
        fmt = str(self.query_one("#format", Select).value)
        path = Path(self.query_one("#path", Input).value.strip()).expanduser()
        overwrite = self.query_one("#overwrite", Checkbox).value

        def work() -> str:
            problem = control_problem(str(path), label="The file name")
            if problem:
                raise ValidationError(FieldError("path", problem))
            if not str(path) or path.is_dir():
                raise ValidationError(FieldError("path", "Give a file name to write to."))
            if path.exists() and not overwrite:
                raise ValidationError(FieldError(
                    "path", f"{path} exists; tick Overwrite, or choose another name."))
            if fmt == "xml":
                data = services(store).consumer_info.export_xml()
            else:
                info = describe(services(store).consumer_info.get().public_key)
                data = (info.pem if fmt == "pem" else info.base64_der + "\n").encode()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            except OSError as exc:
                raise ValidationError(FieldError(
                    "path", f"Cannot write {path}: {exc.strerror or exc}.")) from exc
            return str(path)

        run_job(self, work, self._written, doing="Exporting", group="export",
                failed=self._failed)

    def _failed(self, exc: Exception) -> bool:
        self.query_one("#export-error", Static).update(plain(error_text(exc)))
        return True

    def _written(self, path: str) -> None:
        fmt = str(self.query_one("#format", Select).value)
        self.app.post_message(ExportWritten(path, {v: k for k, v in FORMATS}[fmt]))
        self.dismiss(path)
