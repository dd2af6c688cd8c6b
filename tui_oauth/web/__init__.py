"""The provider's HTTP endpoints (Starlette): see :func:`tui_oauth.web.app.create_app`."""

from __future__ import annotations

from tui_oauth.web.app import create_app

__all__ = ["create_app"]
