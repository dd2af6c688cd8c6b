"""Add or edit a service provider: secret masked, signature method from a list, http warned."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, Select

from tui_oauth.core.models import HMAC_SHA1, PLAINTEXT, RSA_SHA1, ServiceProvider
from tui_oauth.core.registry import services
from tui_oauth.core.services import UNSET
from tui_oauth.core.services.providers import (
    URL_FIELDS,
    http_warning,
    plain_http,
    provider_warnings,
)
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ProviderSaved
from tui_oauth.tui.screens.form import FormScreen
from tui_oauth.tui.widgets.field import Field

METHODS = [
    ("HMAC-SHA1 (shared secret)", HMAC_SHA1),
    ("RSA-SHA1 (signs with our Consumer Info key)", RSA_SHA1),
    ("PLAINTEXT (https only)", PLAINTEXT),
]


def url_warning(urls: dict[str, str], method: str) -> str:
    """What to say about the URLs as they are typed (the service decides on save)."""
    plain = plain_http(urls)
    if plain is None:
        return ""
    if method == PLAINTEXT:
        return f"PLAINTEXT is refused with http: {plain}. Use https URLs or choose HMAC-SHA1."
    return f"Warning: {http_warning(urls)} Prefer https."


class ProviderFormScreen(FormScreen):
    def __init__(self, provider: ServiceProvider | None = None) -> None:
        super().__init__()
        self.provider = provider

    def form_title(self) -> str:
        return ("Add a service provider" if self.provider is None
                else f"Edit service provider {self.provider.name}")

    def save_label(self) -> str:
        return "Add provider" if self.provider is None else "Save changes"

    def compose_fields(self) -> ComposeResult:
        p = self.provider
        yield Field("name", "Name (unique)", Input(p.name if p else "", id="name"))
        yield Field("description", "Description",
                    Input((p.description or "") if p else "", id="description"))
        yield Field("consumer_key", "Consumer key (the key the provider gave us)",
                    Input(p.consumer_key if p else "", id="consumer_key"))
        hint = ("Required for HMAC-SHA1 and PLAINTEXT; kept in the keyring, never shown."
                if p is None or not p.has_shared_secret else
                "A secret is stored; leave blank to keep it, type a new one to replace it.")
        yield Field("shared_secret", "Shared secret",
                    Input(password=True, id="shared_secret"), hint=hint)
        yield Field("signature_method", "Signature method",
                    Select(METHODS, value=p.signature_method if p else HMAC_SHA1,
                           allow_blank=False, id="signature_method"))
        for field, label in URL_FIELDS.items():
            yield Field(field, label, Input(getattr(p, field) if p else "", id=field,
                                            placeholder="https://..."))

    def on_mount(self) -> None:
        self.query_one("#name").focus()
        self._update_warning()

    def _method(self) -> str:
        return str(self.query_one("#signature_method", Select).value)

    def _urls(self) -> dict[str, str]:
        return {f: self.value(f) for f in URL_FIELDS}

    def _update_warning(self) -> None:
        self.show_warning(url_warning(self._urls(), self._method()))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in URL_FIELDS:
            self._update_warning()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._update_warning()

    def save(self) -> None:
        store = store_of(self)
        fields = dict(name=self.value("name"), description=self.value("description"),
                      consumer_key=self.value("consumer_key"), signature_method=self._method(),
                      **self._urls())
        secret = self.value("shared_secret")
        existing = self.provider

        def work() -> ServiceProvider:
            if existing is None:
                return services(store).providers.add(shared_secret=secret or None, **fields)
            return services(store).providers.edit(existing.name, shared_secret=secret or UNSET,
                                                  expected_updated_at=existing.updated_at, **fields)

        run_job(self, work, self._saved, doing="Saving the service provider", group="save",
                loading=self.query_one("#form-body"), failed=self.handle_failure)

    def reloaded(self, current: object) -> FormScreen | None:
        return ProviderFormScreen(current) if isinstance(current, ServiceProvider) else None

    def _saved(self, provider: ServiceProvider) -> None:
        self.app.post_message(ProviderSaved(provider.name, added=self.provider is None,
                                            warnings=provider_warnings(provider)))
        self.dismiss(None)
