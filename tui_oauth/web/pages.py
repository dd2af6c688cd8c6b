"""The few HTML pages a person sees: the authorize page and its answers."""

from __future__ import annotations

from html import escape

from tui_oauth.core.text import command_line

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "color:#172b4d}h1{font-size:1.4rem}.box{border:1px solid #dfe1e6;border-radius:4px;"
    "padding:1rem 1.25rem}button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}"
    "code{background:#f4f5f7;padding:.1rem .3rem;word-break:break-all}"
    ".allow{background:#0052cc;color:#fff;border:0;border-radius:3px}"
)


def page(title: str, body_html: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body_html}</body></html>"
    )


def message(title: str, text: str) -> str:
    return page(title, f"<p>{escape(text)}</p>")


def consumer_block(name: str, description: str | None) -> str:
    desc = f"<p>{escape(description)}</p>" if description else ""
    return (f"<div class=box><p><strong>{escape(name)}</strong> asks to use your account.</p>"
            f"{desc}</div>")


def authorize_form(action: str, token: str, csrf: str, user: str, name: str,
                   description: str | None) -> str:
    return page(
        "Allow access?",
        consumer_block(name, description)
        + f"<p>Signed in as <strong>{escape(user)}</strong>.</p>"
        f"<form method=post action='{escape(action, quote=True)}'>"
        f"<input type=hidden name=oauth_token value='{escape(token, quote=True)}'>"
        f"<input type=hidden name=csrf value='{escape(csrf, quote=True)}'>"
        "<button class=allow name=decision value=allow type=submit>Allow</button>"
        "<button name=decision value=deny type=submit>Deny</button></form>",
    )


def authorize_command(token: str) -> str:
    """The command an administrator runs to approve ``token``; ``--`` goes before the
    token, which may start with ``-``."""
    return command_line("tokens", "authorize", "--user", "NAME", values=[token])


def approve_elsewhere(token: str, name: str, description: str | None) -> str:
    return page(
        "Approval needed",
        consumer_block(name, description)
        + "<p>This server does not know who you are (no trusted user header is configured), "
        "so it cannot take your answer here. An administrator can approve it with:</p>"
        f"<p><code>{escape(authorize_command(token))}</code></p>"
        "<p>and give the verifier it prints to the application.</p>",
    )


def verifier_page(name: str, verifier: str) -> str:
    return page("Access allowed",
                f"<p>You allowed <strong>{escape(name)}</strong>. Give it this verification "
                f"code:</p><p><code>{escape(verifier)}</code></p>")


def denied_page(name: str) -> str:
    return message("Access denied", f"You denied {name} access. You can close this page.")
