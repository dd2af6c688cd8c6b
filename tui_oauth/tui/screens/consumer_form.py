"""Add a consumer by hand, or edit one (the key is shown but cannot change)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Select, Static, TextArea

from tui_oauth.core.errors import ValidationError
from tui_oauth.core.keys import RECOMMENDED_BITS, PublicKeyInfo, describe, parse_public_key
from tui_oauth.core.models import HMAC_SHA1, RSA_SHA1, Consumer
from tui_oauth.core.registry import services
from tui_oauth.core.services import UNSET
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ConsumerSaved
from tui_oauth.tui.screens.form import FormScreen
from tui_oauth.tui.text import plain
from tui_oauth.tui.widgets.field import Field

METHODS = [("RSA-SHA1 (public key)", RSA_SHA1), ("HMAC-SHA1 (shared secret)", HMAC_SHA1)]


def key_summary(pk: PublicKeyInfo) -> str:
    """``RSA 2048 bits``; a key under 2048 bits says, in words, that it is weak."""
    if not pk.weak:
        return f"RSA {pk.bits} bits"
    return f"RSA {pk.bits} bits: WEAK (under {RECOMMENDED_BITS})"


def key_warnings(pk: PublicKeyInfo) -> list[str]:
    """What to say about a key that may still be saved: weak, an expired certificate."""
    said = [f"Weak key: RSA {pk.bits} bits, under the {RECOMMENDED_BITS} bits recommended. "
            "It can be saved, but ask the consumer for a 2048-bit (or larger) key pair."
            ] if pk.weak else []
    return said + [f"Warning: {w}" for w in pk.warnings
                   if not (pk.weak and w.startswith(f"{pk.bits}-bit key"))]


def pasted_key_warning(text: str) -> str:
    """The warning for what is in the public key field now ("" when none, or when it
    does not parse: that is an error, said when saving)."""
    if not text.strip():
        return ""
    try:
        return "\n".join(key_warnings(parse_public_key(text)))
    except ValidationError:
        return ""


class ConsumerFormScreen(FormScreen):
    """``consumer`` None adds; a Consumer (with its PEM) edits."""

    DEFAULT_CSS = """
    ConsumerFormScreen #public-key-warning {
        color: $warning;
        height: auto;
        display: none;
    }
    ConsumerFormScreen #public-key-warning.-shown {
        display: block;
    }
    """

    def __init__(self, consumer: Consumer | None = None, public_key_pem: str = "") -> None:
        super().__init__()
        self.consumer = consumer
        self.public_key_pem = public_key_pem

    def form_title(self) -> str:
        if self.consumer is None:
            return "Add a consumer by hand"
        return f"Edit consumer {self.consumer.key}"

    def save_label(self) -> str:
        return "Add consumer" if self.consumer is None else "Save changes"

    def compose_fields(self) -> ComposeResult:
        c = self.consumer
        key_hint = ("Unique, e.g. jira:13549426; it cannot change later." if c is None
                    else "The key cannot change: add a new consumer to use another key.")
        yield Field("key", "Consumer key", Input(c.key if c else "", id="key",
                                                 disabled=c is not None), hint=key_hint)
        yield Field("name", "Name (shown to users when they approve access)",
                    Input(c.name if c else "", id="name"))
        yield Field("description", "Description",
                    Input((c.description or "") if c else "", id="description"))
        yield Field("signature_method", "Signature method",
                    Select(METHODS, value=c.signature_method if c else RSA_SHA1,
                           allow_blank=False, id="signature_method"))
        yield Field("public_key", "Public key (PEM, X.509 certificate or bare base64)",
                    TextArea(self.public_key_pem, id="public_key", soft_wrap=True))
        yield Static("", id="public-key-warning", markup=False)
        secret_hint = ("Only for HMAC-SHA1; kept in the keyring." if c is None or
                       not c.has_shared_secret else
                       "A secret is stored; leave blank to keep it, type a new one to replace it.")
        yield Field("shared_secret", "Shared secret",
                    Input(password=True, id="shared_secret"), hint=secret_hint)
        yield Field("callback_url", "Callback URL (used when the consumer sends none)",
                    Input((c.callback_url or "") if c else "", id="callback_url",
                          placeholder="https://..."))
        yield Field("three_lo_allowed", "",
                    Checkbox("Allow 3-legged OAuth (users approve access)",
                             c.three_lo_allowed if c else True, id="three_lo_allowed"))
        yield Field("two_lo_allowed", "",
                    Checkbox("Allow 2-legged OAuth (signed requests without a user token)",
                             c.two_lo_allowed if c else False, id="two_lo_allowed"))
        yield Field("two_lo_execute_as", "2LO: execute as user (blank = anonymous)",
                    Input((c.two_lo_execute_as or "") if c else "", id="two_lo_execute_as"))
        yield Field("two_lo_impersonation", "",
                    Checkbox("2LO impersonation (the consumer names the user)",
                             c.two_lo_impersonation if c else False, id="two_lo_impersonation"))
        yield Field("allow_plaintext", "",
                    Checkbox("Allow PLAINTEXT signatures (https only, with the shared secret)",
                             c.allow_plaintext if c else False, id="allow_plaintext"))

    def on_mount(self) -> None:
        self.query_one("#name" if self.consumer else "#key").focus()
        self._update_key_warning()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "public_key":
            self._update_key_warning()

    def _update_key_warning(self) -> None:
        """A weak key is said as soon as it is pasted (a warning: it may be saved)."""
        text = pasted_key_warning(self.query_one("#public_key", TextArea).text)
        warning = self.query_one("#public-key-warning", Static)
        warning.update(plain(text))
        warning.set_class(bool(text), "-shown")

    def collect(self) -> dict[str, Any]:
        public_key = self.query_one("#public_key", TextArea).text.strip()
        return dict(
            name=self.value("name"),
            description=self.value("description"),
            signature_method=self.query_one("#signature_method", Select).value,
            public_key=public_key or None,
            callback_url=self.value("callback_url"),
            three_lo_allowed=self.query_one("#three_lo_allowed", Checkbox).value,
            two_lo_allowed=self.query_one("#two_lo_allowed", Checkbox).value,
            two_lo_execute_as=self.value("two_lo_execute_as"),
            two_lo_impersonation=self.query_one("#two_lo_impersonation", Checkbox).value,
            allow_plaintext=self.query_one("#allow_plaintext", Checkbox).value,
        )

    def save(self) -> None:
        store = store_of(self)
        fields = self.collect()
        secret = self.value("shared_secret")
        existing = self.consumer
        if existing is None:
            key = self.value("key")

            def work() -> str:
                return services(store).consumers.add(key=key, shared_secret=secret or None,
                                                     **fields).key
        else:
            key, seen = existing.key, existing.updated_at

            def work() -> str:
                return services(store).consumers.edit(key, shared_secret=secret or UNSET,
                                                      expected_updated_at=seen, **fields).key

        run_job(self, work, self._saved, doing="Saving the consumer", group="save",
                loading=self.query_one("#form-body"), failed=self.handle_failure)

    def reloaded(self, current: object) -> FormScreen | None:
        if not isinstance(current, Consumer):
            return None
        pem = describe(current.public_key).pem if current.public_key else ""
        return ConsumerFormScreen(current, pem)

    def _saved(self, key: str) -> None:
        self.app.post_message(ConsumerSaved(key, added=self.consumer is None))
        self.dismiss(None)
