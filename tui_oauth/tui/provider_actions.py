"""Remove and reveal, shared by the Service Providers tab and the provider view."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode

from tui_oauth.core.registry import services
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ProviderRemoved, SecretRevealed
from tui_oauth.tui.removal import remove_confirmed
from tui_oauth.tui.text import plural


def confirm_remove_provider(node: DOMNode, name: str, tokens: int, *,
                            on_done: Callable[[], object] | None = None) -> None:
    store = store_of(node)
    # The dialogs are imported when first needed, not before the first paint.
    from tui_oauth.tui.modals.confirm import ConfirmModal
    from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal

    dialog = TypedConfirmModal(
        "Remove service provider?",
        f"{name} will be removed with the {plural(tokens, 'token')} we hold from it, and "
        "its shared secret is deleted from the keyring. This cannot be undone.", name,
    ) if tokens else ConfirmModal(
        "Remove service provider?",
        f"{name} will be removed and its shared secret deleted from the keyring. "
        "We hold no token from it.", yes="Remove")
    remove_confirmed(node, dialog, lambda: services(store).providers.remove(name),
                     lambda n: ProviderRemoved(name, n),
                     doing="Removing the service provider", on_done=on_done)


def reveal_secret(node: DOMNode, name: str, has_secret: bool) -> None:
    """Record the reveal in the audit log first, then show the secret for a few seconds."""
    if not has_secret:
        node.app.notify(f"{name} has no shared secret (it signs with RSA-SHA1).", markup=False)
        return
    store = store_of(node)

    def work() -> str | None:
        services(store).providers.record_reveal(name)
        return services(store).providers.shared_secret(name)

    def show(secret: str | None) -> None:
        node.app.post_message(SecretRevealed(name))
        if secret is None:
            node.app.notify(f"The keyring has no secret for {name}; edit the provider to set it.",
                        severity="warning", markup=False)
            return
        from tui_oauth.tui.modals.reveal_secret import RevealSecretModal

        node.app.push_screen(RevealSecretModal(name, secret))

    run_job(node, work, show, doing="Reading the secret from the keyring", group="reveal")
