"""One consumer: every field, its public key, and its tokens (read a window at a time)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from tui_oauth.core.keys import PublicKeyInfo
from tui_oauth.core.registry import services
from tui_oauth.core.services.consumers import ConsumerDetail, Rotation
from tui_oauth.core.services.tokens import TokenSelection
from tui_oauth.core.text import visible
from tui_oauth.tui.consumer_actions import confirm_remove_consumer
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import StoreChanged, TokensRevoked
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen, key_summary
from tui_oauth.tui.screens.refusals import clock_words, compact_advice
from tui_oauth.tui.styles import REFUSALS
from tui_oauth.tui.text import dash, field_rows, plain, plural, when, yes_no
from tui_oauth.tui.widgets.footer import FittingFooter
from tui_oauth.tui.widgets.table import Table
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, Row, VirtualTable, shorten

if TYPE_CHECKING:
    from tui_oauth.core.services.refusals import ClockSkew, RefusalRow, RefusalSummary

TOKEN_COLUMNS = [  # at 80 columns "Last used", then "Type", give way; times are never cut
    Column("User", min=8, max=24),
    Column("Type", drop=2),
    Column("State"),
    Column("Issued", min=16, drop=1),
    Column("Expires", min=16),
    Column("Last used", min=16, drop=3),
    Column("Token", min=12, shorten="middle"),
]
RECENT = 5  # refusals shown in the view; `!` lists them all
BASE64_TITLE = "Public key (bare base64, what Atlassian's \"Public Key\" field takes) · b: copy"
PEM_TITLE = "Public key (PEM) · c: copy"


def describe_consumer(d: ConsumerDetail) -> str:
    c, pk = d.consumer, d.public_key
    rows = [
        ("Consumer key", c.key), ("Name", c.name),
        ("Tokens", f"{d.request_tokens} request, {d.access_tokens} access"),
        ("Description", dash(c.description)),
        ("Signature", c.signature_method),
        ("Public key", (key_summary(pk) + ": ask the consumer for a new key pair"
                        if pk.weak else key_summary(pk)) if pk else "none"),
        ("Fingerprint", pk.fingerprint if pk else "-"),
        ("Shared secret", "stored in the keyring" if c.has_shared_secret else "none"),
        *([("  previous", f"still accepted until {when(c.previous_secret_until)} UTC "
                          "(rotated with an overlap)")] if c.previous_secret_until else []),
        ("Callback URL", dash(c.callback_url)),
        ("3LO allowed", yes_no(c.three_lo_allowed)),
        ("2LO allowed", yes_no(c.two_lo_allowed)
         + (f", execute as {c.two_lo_execute_as}" if c.two_lo_execute_as else "")
         + (", impersonation allowed" if c.two_lo_impersonation else "")),
        ("PLAINTEXT", yes_no(c.allow_plaintext)),
        ("Created", when(c.created_at)), ("Updated", when(c.updated_at)),
    ]
    return field_rows(rows, 14)


def describe_refusals(summary: RefusalSummary, clock: ClockSkew | None) -> str:
    """``Recent refusals: 12 (signature_invalid 8, timestamp_refused 4) · ...`` and
    ``Clock: 7 min 12 s behind ours, median of 40 requests``."""
    skew = ("Clock: " + clock_words(clock.median_offset)
            + f", median of {plural(clock.samples, 'request')}" if clock is not None
            else "Clock: not measured yet")
    if not summary.total:
        return f"Refusals: none recorded · {skew}"
    counts = ", ".join(f"{problem} {n:,}" for problem, n in summary.counts.items())
    return (f"Recent refusals: {summary.total:,} ({counts}) · tab, enter: open · !: all\n"
            f"{skew}")


class ConsumerDetailScreen(ReadOnlyGuard, Screen[None]):
    AUTO_FOCUS = "#tokens"
    HELP_TITLE = "Consumer"
    CSS_PATH = REFUSALS  # detail.tcss and the refusals' own
    CHANGES = frozenset({"edit", "remove", "revoke", "revoke_all", "rotate_secret"})
    BINDINGS = [
        Binding("escape", "back", "Back", id="consumer.back", tooltip="Back to the list"),
        Binding("e", "edit", "Edit", id="consumer.edit", tooltip="Edit this consumer"),
        Binding("d", "remove", "Remove", id="consumer.remove",
                tooltip="Remove this consumer and its tokens"),
        Binding("c", "copy_pem", "Copy PEM", id="consumer.copy_pem",
                tooltip="Copy the public key (PEM) to the clipboard (OSC 52, works over SSH)"),
        Binding("b", "copy_base64", "Copy base64", id="consumer.copy_base64",
                tooltip="Copy the public key as bare base64 (Atlassian's \"Public Key\" "
                        "field) to the clipboard (OSC 52)"),
        Binding("S", "rotate_secret", "Rotate secret", id="consumer.rotate_secret",
                tooltip="Generate a new shared secret; the old one works for an overlap"),
        Binding("r", "revoke", "Revoke token", id="consumer.revoke",
                tooltip="Revoke the selected token"),
        Binding("R", "revoke_all", "Revoke all", id="consumer.revoke_all",
                tooltip="Revoke every live token of this consumer"),
        Binding("ctrl+r", "refresh", "Refresh", id="consumer.refresh", show=False,
                tooltip="Read the consumer and its tokens again"),
        Binding("enter", "open_refusal", "Open refusal", id="consumer.open_refusal",
                tooltip="The whole record of the selected refusal (tab moves to the list)"),
    ]
    #: what `!` (app.refusals) shows from here: this consumer's refusals
    refusals_of: str

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.refusals_of = key
        self.detail: ConsumerDetail | None = None
        self.refusals: dict[str, RefusalRow] = {}
        #: Keys that act on the consumer, typed before it was read: run once it is.
        self._typed_ahead: list[Callable[[], None]] = []
        #: Tokens listed (None: not read yet); with none, revoking leaves the footer.
        self.token_count: int | None = None

    def _read_first(self, action: Callable[[], None]) -> bool:
        """Whether the consumer is read; if not, ``action`` runs once it is (``e`` or
        ``S`` pressed with the Enter that opened this screen is not lost)."""
        if self.detail is not None:
            return True
        self._typed_ahead.append(action)
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """What does not apply to this consumer leaves the footer (80 columns keep what
        does): copying a key it does not have, rotating a secret it does not have,
        revoking tokens it does not have."""
        detail = self.detail
        if detail is not None:
            if action in ("copy_pem", "copy_base64") and detail.public_key is None:
                return False
            if action == "rotate_secret" and not detail.consumer.has_shared_secret:
                return False
        if action in ("revoke", "revoke_all") and self.token_count == 0:
            return False  # "Tokens: none": nothing to revoke
        if action == "open_refusal":  # by name (the palette): the selected one, if any
            return ((self.focused is not None and self.focused.id == "refusals")
                    or (getattr(self.app, "by_name", False) and bool(self.refusals)))
        return super().check_action(action, parameters)

    @property
    def focus_chain(self) -> list[Widget]:
        """Tab from the tokens (focused on opening) goes to the refusals first."""
        chain = super().focus_chain
        return ([w for w in chain if w.id == "refusals"]
                + [w for w in chain if w.id != "refusals"])

    def compose(self) -> ComposeResult:
        yield Label(plain(f"Consumer {self.key}", multiline=False), id="detail-title")
        with VerticalScroll(id="detail-fields"):
            # Read on its own (the log can be long): the consumer shows without waiting.
            yield Static("Refusals: reading…", id="refusals-summary", markup=False)
            refusals = Table(id="refusals")
            refusals.display = False
            yield refusals
            yield Static("Loading…", id="consumer-fields", markup=False)
            # Shown once the consumer is read, if it has a public key.
            for widget in (Label(plain(BASE64_TITLE), classes="section"),
                           Static("", id="consumer-base64", markup=False),
                           Label(plain(PEM_TITLE), classes="section"),
                           Static("", id="consumer-pem", markup=False)):
                widget.add_class("key-section")
                widget.display = False
                yield widget
        yield Label("Tokens", id="tokens-title", markup=False)
        yield VirtualTable(TOKEN_COLUMNS, id="tokens", doing="Reading the tokens")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.tokens.focus()
        self.action_refresh()

    @property
    def tokens(self) -> VirtualTable:
        return self.query_one("#tokens", VirtualTable)

    # Loading -----------------------------------------------------------------

    def action_refresh(self, quiet: bool = False) -> None:
        store = store_of(self)
        # No loading indicator: it is "Loading…" until read, then the fields stay shown
        # while they are read again (mounting an indicator cost ~40 ms a time).
        run_job(self, lambda: services(store).consumers.detail(self.key), self._show_detail,
                doing="Reading the consumer", group="detail")
        key = self.key
        run_job(self, lambda: (services(store).refusals.summary(key, recent=RECENT),
                               services(store).refusals.clock(key)),
                self._show_refusals, doing="Reading the refusals", group="refusals")
        if quiet and self.tokens.loaded:
            self.tokens.load()  # the same list again: the cursor stays on its token
        else:
            self._load_tokens()

    def _show_detail(self, detail: ConsumerDetail) -> None:
        self.detail = detail
        self.refresh_bindings()  # the footer shows what applies to this consumer
        pending, self._typed_ahead = self._typed_ahead, []
        for action in pending:
            self.call_later(action)
        self.query_one("#detail-title", Label).update(
            plain(f"Consumer {detail.consumer.key} — {detail.consumer.name}", multiline=False))
        self.query_one("#consumer-fields", Static).update(plain(describe_consumer(detail)))
        pk = detail.public_key
        for widget in self.query(".key-section"):
            widget.display = pk is not None
        self.query_one("#consumer-base64", Static).update(plain(pk.base64_der if pk else ""))
        self.query_one("#consumer-pem", Static).update(plain(pk.pem.strip() if pk else ""))

    def _show_refusals(self, found: tuple[RefusalSummary, ClockSkew | None]) -> None:
        summary, clock = found
        self.query_one("#refusals-summary", Static).update(
            plain(describe_refusals(summary, clock)))
        table = self.query_one("#refusals", Table)
        keep = table.current_key
        table.clear(columns=True)
        self.refusals = {}
        table.display = bool(summary.recent)
        if not summary.recent:
            return
        table.add_columns("When (UTC)", "Problem", "Advice")
        # Under 100 columns the date loses its year (as in the refusals list), and the
        # advice is the fragment that matters (the record has it all).
        wide = (self.size.width or self.app.size.width) >= 100
        # padding, label and scroll bar, three columns' padding, the time and the problem
        width = max(20, (self.size.width or self.app.size.width) - 7 - 6
                    - (19 if wide else 14) - 17)
        for r in summary.recent:
            self.refusals[str(r.id)] = r
            table.add_row(when(r.at, seconds=True) if wide else r.at.strftime("%m-%d %H:%M:%S"),
                          shorten(r.problem, 18), compact_advice(r, width), key=str(r.id))
        table.styles.height = len(summary.recent) + 1
        table.select_key(keep)

    def action_open_refusal(self) -> None:
        table = self.query_one("#refusals", Table)
        row = self.refusals.get(table.current_key or "")
        if row is not None:
            from tui_oauth.tui.screens.refusal_record import RefusalRecordScreen

            self.app.push_screen(RefusalRecordScreen(row))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """A click on the selected refusal opens it, as enter does."""
        if event.data_table.id == "refusals":
            self.action_open_refusal()

    def _load_tokens(self) -> None:
        """Every token, newest first, read a window at a time as the list scrolls."""
        service, key = services(store_of(self)).tokens, self.key

        def window(start: int, size: int, total: int | None) -> list[Row]:
            return [Row(t.token, (dash(t.user), t.type, t.state, when(t.issued_at),
                                  when(t.expires_at), when(t.last_used_at), t.token), t)
                    for t in service.window(key, start=start, size=size, total=total)]

        self.tokens.load(FuncSource(lambda: service.count_of(key), window,
                                    lambda token: service.position(key, token)))

    def on_store_changed(self, event: StoreChanged) -> None:
        """Changed elsewhere: read the consumer and the tokens in view again, quietly."""
        self.action_refresh(quiet=True)

    def on_virtual_table_loaded(self, event: VirtualTable.Loaded) -> None:
        event.stop()
        n = event.row_count
        changed = (n == 0) != (self.token_count == 0)
        self.token_count = n
        if changed:
            self.refresh_bindings()
        self.query_one("#tokens-title", Label).update(plain(
            f"Tokens, newest first: {plural(n, 'token')} · r: revoke  R: revoke all"
            if n else "Tokens: none", multiline=False))

    # Copying the public key ----------------------------------------------------

    def action_copy_pem(self) -> None:
        self._copy("PEM", lambda pk: pk.pem)

    def action_copy_base64(self) -> None:
        self._copy("bare base64", lambda pk: pk.base64_der)

    def _copy(self, form: str, text: Callable[[PublicKeyInfo], str]) -> None:
        if not self._read_first(lambda: self._copy(form, text)) or self.detail is None:
            return
        pk = self.detail.public_key
        if pk is None:
            self.notify(f"{visible(self.key)} has no public key (it signs with a shared secret): "
                        "nothing to copy.", severity="warning", markup=False)
            return
        self.app.copy_to_clipboard(text(pk))
        self.notify(f"Copied the public key ({form}) — your terminal must allow OSC 52.",
                    markup=False)

    # Changes -----------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)

    def action_edit(self) -> None:
        if not self._read_first(self.action_edit) or self.detail is None:
            return
        pem = self.detail.public_key.pem if self.detail.public_key else ""
        self.app.push_screen(ConsumerFormScreen(self.detail.consumer, pem),
                             lambda _: self.action_refresh())

    def action_remove(self) -> None:
        if self._read_first(self.action_remove) and self.detail is not None:
            confirm_remove_consumer(self, self.key, self.detail.token_count,
                                    on_done=lambda: self.dismiss(None))

    def action_rotate_secret(self) -> None:
        if not self._read_first(self.action_rotate_secret) or self.detail is None:
            return
        if not self.detail.consumer.has_shared_secret:
            self.notify(f"{visible(self.key)} has no shared secret to rotate (it signs with "
                        f"{self.detail.consumer.signature_method}).", severity="warning",
                        markup=False)
            return
        from tui_oauth.tui.modals.reveal_secret import RevealSecretModal
        from tui_oauth.tui.modals.rotate_secret import RotateSecretModal

        store, key = store_of(self), self.key

        def rotated(rotation: Rotation) -> None:
            self.action_refresh(quiet=True)
            until = (f"The old one works until {when(rotation.previous_until)} UTC."
                     if rotation.previous_until else "The old one no longer works.")
            self.app.push_screen(RevealSecretModal(
                key, rotation.secret, seconds=60,
                note=f"The new secret; give it to the consumer now. {until} The rotation "
                     "is recorded in the audit log."))

        def answered(overlap: timedelta | None) -> None:
            if overlap is not None:
                run_job(self, lambda: services(store).consumers.rotate_secret(key, overlap=overlap),
                        rotated, doing="Rotating the shared secret", group="rotate")

        self.app.push_screen(RotateSecretModal(key), answered)

    def action_revoke(self) -> None:
        token = self.tokens.current_key
        if token is None:
            self.notify("No token selected.", severity="warning", markup=False)
            return
        store = store_of(self)

        def answered(yes: bool | None) -> None:
            if yes:
                run_job(self, lambda: services(store).tokens.revoke(token), self._revoked_one,
                        doing="Revoking the token", group="revoke")

        self.app.push_screen(ConfirmModal(
            "Revoke this token?",
            f"Token {token[:12]}… of {self.key} stops working on its next request.",
            yes="Revoke"), answered)

    def _revoked_one(self, _: object) -> None:
        self.app.post_message(TokensRevoked(self.key, 1))
        self.action_refresh()

    def action_revoke_all(self) -> None:
        store, sel = store_of(self), TokenSelection(consumer_key=self.key)

        def counted(n: int) -> None:
            if n == 0:
                self.notify(f"{self.key} has no live token to revoke.", markup=False)
                return
            def answered(yes: bool | None) -> None:
                if yes:
                    run_job(self, lambda: services(store).tokens.revoke_where(sel),
                            self._revoked_all,
                            doing="Revoking tokens", group="revoke")

            self.app.push_screen(ConfirmModal(
                f"Revoke {plural(n, 'token')}?",
                f"Every live request and access token of {self.key} ({n}) stops working; "
                "users will have to approve access again.", yes="Revoke all"), answered)

        run_job(self, lambda: services(store).tokens.count(sel), counted, doing="Counting tokens",
                group="count")

    def _revoked_all(self, n: int) -> None:
        self.app.post_message(TokensRevoked(self.key, n))
        self.action_refresh()

