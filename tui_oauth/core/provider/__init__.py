"""The OAuth 1.0a service provider over the store (no web framework here).

``engine.ProviderEngine`` runs the protocol; ``validator`` is the oauthlib
RequestValidator; ``consumers`` keeps what verification needs in memory;
``crypto`` is the data key that encrypts token secrets; ``problems`` the
Problem Reporting answers; ``settings`` the lifetimes and the timestamp window.
"""

from __future__ import annotations

from tui_oauth.core.provider.problems import Problem

__all__ = ["Problem"]
