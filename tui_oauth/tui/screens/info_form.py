"""Edit our Consumer Info: name, description and callback URL (the key never changes)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input

from tui_oauth.core.models import ConsumerInfo
from tui_oauth.core.registry import services
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ConsumerInfoChanged
from tui_oauth.tui.screens.form import FormScreen
from tui_oauth.tui.widgets.field import Field


class InfoFormScreen(FormScreen):
    def __init__(self, info: ConsumerInfo) -> None:
        super().__init__()
        self.info = info

    def form_title(self) -> str:
        return f"Edit our Consumer Info ({self.info.key})"

    def compose_fields(self) -> ComposeResult:
        i = self.info
        yield Field("name", "Name", Input(i.name, id="name"),
                    hint="Shown to users when they approve our access on a provider.")
        yield Field("description", "Description", Input(i.description or "", id="description"))
        yield Field("callback_url", "Callback URL", Input(i.callback_url or "",
                                                          id="callback_url",
                                                          placeholder="https://..."))

    def on_mount(self) -> None:
        self.query_one("#name").focus()

    def save(self) -> None:
        store = store_of(self)
        name, description = self.value("name"), self.value("description")
        callback = self.value("callback_url")
        seen = self.info.updated_at
        run_job(self, lambda: services(store).consumer_info.edit(name=name, description=description,
                                                                 callback_url=callback,
                                                                 expected_updated_at=seen),
                self._saved, doing="Saving the Consumer Info", group="save",
                loading=self.query_one("#form-body"), failed=self.handle_failure)

    def reloaded(self, current: object) -> FormScreen | None:
        return InfoFormScreen(current) if isinstance(current, ConsumerInfo) else None

    def _saved(self, _: object) -> None:
        self.app.post_message(ConsumerInfoChanged("edit"))
        self.dismiss(None)
