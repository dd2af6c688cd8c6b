"""Where things live: the default store, and the environment that overrides it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tui_oauth import APP_NAME

ENV_DB = "TUI_OAUTH_DB"


def default_data_dir() -> Path:
    # Imported here: platformdirs costs ~8 ms (measured with -X importtime), which a
    # store named by --db or TUI_OAUTH_DB, and a TAB, never need.
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return default_data_dir() / "tui-oauth.db"


def resolve_db_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The database URL: ``--db`` first, then ``TUI_OAUTH_DB``, then the default file.

    A plain path (no ``://``) is taken as a SQLite file.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    value = explicit or source.get(ENV_DB) or ""
    value = value.strip()
    if not value:
        return f"sqlite:///{default_db_path()}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def is_default_location(url: str) -> bool:
    """Whether ``url`` (resolved) is the default store, the one made on first use."""
    return url == f"sqlite:///{default_db_path()}"
