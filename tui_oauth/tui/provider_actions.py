"""Remove and reveal, shared by the Service Providers tab and the provider view."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode

from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ProviderRemoved, SecretRevealed
from tui_oauth.tui.text import plural


def confirm_remove_provider(node: DOMNode, name: str, tokens: int, *,
                            on_done: Callable[[], object] | None = None) -> None:
    store = store_of(node)

    def removed(n: int) -> None:
        node.app.post_message(ProviderRemoved(name, n))
        if on_done is not None:
            on_done()

    def answered(yes: bool | None) -> None:
        if yes:
            run_job(node, lambda: store.providers.remove(name), removed,
                    doing="Removing the service provider", group="remove")

    # The dialogs are imported when first needed, not before the first paint.
    from tui_oauth.tui.modals.confirm import ConfirmModal
    from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal

    if tokens:
        node.app.push_screen(TypedConfirmModal(
            "Remove service provider?",
            f"{name} will be removed with the {plural(tokens, 'token')} we hold from it, and "
            "its shared secret is deleted from the keyring. This cannot be undone.", name),
            answered)
    else:
        node.app.push_screen(ConfirmModal(
            "Remove service provider?",
            f"{name} will be removed and its shared secret deleted from the keyring. "
            "We hold no token from it.", yes="Remove"), answered)


def reveal_secret(node: DOMNode, name: str, has_secret: bool) -> None:
    """Record the reveal in the audit log first, then show the secret for a few seconds."""
    if not has_secret:
        node.app.notify(f"{name} has no shared secret (it signs with RSA-SHA1).", markup=False)
        return
    store = store_of(node)

    def work() -> str | None:
        store.providers.record_reveal(name)
        return store.providers.shared_secret(name)

    def show(secret: str | None) -> None:
        node.app.post_message(SecretRevealed(name))
        if secret is None:
            node.app.notify(f"The keyring has no secret for {name}; edit the provider to set it.",
                        severity="warning", markup=False)
            return
        from tui_oauth.tui.modals.reveal_secret import RevealSecretModal

        node.app.push_screen(RevealSecretModal(name, secret))

    run_job(node, work, show, doing="Reading the secret from the keyring", group="reveal")
