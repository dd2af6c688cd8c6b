"""Where things live: the default store, the config file, and the environment that
overrides it.

Precedence, for every setting: a command-line flag, then its environment variable,
then the config file, then the default.  The config file is TOML, at
``$XDG_CONFIG_HOME/tui-oauth/config.toml`` (platformdirs' user config directory) or
wherever ``TUI_OAUTH_CONFIG`` says::

    db = "postgresql+psycopg://oauth@db.internal/oauth"   # the store

    [keymap]                      # binding id = keys (ids are listed in the help, ?)
    "consumers.add" = "A"

    [serve]                       # any `serve` option, by its long name
    listen = "0.0.0.0:8080"
    public-url = "https://jira.example.com"
    workers = 2
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_oauth import APP_NAME
from tui_oauth.core.errors import TuiOAuthError

ENV_DB = "TUI_OAUTH_DB"
ENV_CONFIG = "TUI_OAUTH_CONFIG"
#: The tables and keys a config file may hold (anything else is a mistake worth saying).
SECTIONS = ("db", "keymap", "serve")


class ConfigError(TuiOAuthError):
    """The config file cannot be read or holds something it should not."""


@dataclass(frozen=True)
class Config:
    path: Path
    exists: bool
    db: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    serve: dict[str, Any] = field(default_factory=dict)


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``TUI_OAUTH_CONFIG``, else config.toml in the user config directory."""
    source: Mapping[str, str] = os.environ if env is None else env
    explicit = source.get(ENV_CONFIG, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


_cache: dict[tuple[Path, float, int], Config] = {}


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The config file's settings (none when it does not exist); ConfigError, naming the
    file and the line, when it is not valid TOML or holds an unknown or mistyped key.
    ``TUI_OAUTH_CONFIG`` naming a missing file is an error too (a typo, not "no file")."""
    path = config_path(env)
    try:
        st = path.stat()
    except FileNotFoundError:
        if (os.environ if env is None else env).get(ENV_CONFIG, "").strip():
            raise ConfigError(f"The config file {path} does not exist.",
                              hint=f"Create it, or unset {ENV_CONFIG}.") from None
        return Config(path, exists=False)
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from exc
    key = (path, st.st_mtime, st.st_size)
    if key not in _cache:
        _cache.clear()
        _cache[key] = _parse(path)
    return _cache[key]


def _parse(path: Path) -> Config:
    import tomllib

    hint = "Fix the file (TOML: https://toml.io), or move it away to use the defaults."
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"The config file {path} is not UTF-8 text.", hint=hint) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The config file {path} is not valid TOML: {exc}.", hint=hint) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from exc
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"The config file {path} has unknown setting(s): "
                          f"{', '.join(unknown)}; it may hold {', '.join(SECTIONS)}.", hint=hint)
    db = data.get("db")
    if db is not None and (not isinstance(db, str) or not db.strip()):
        raise ConfigError(f"In {path}, db must be a store URL or path (a string).", hint=hint)
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()):
        raise ConfigError(f'In {path}, [keymap] must map binding ids to keys as strings, '
                          'e.g. "consumers.add" = "A".', hint=hint)
    serve = data.get("serve", {})
    if not isinstance(serve, dict):
        raise ConfigError(f"In {path}, serve must be a table ([serve]).", hint=hint)
    return Config(path, exists=True, db=db.strip() if db else None, keymap=dict(keymap),
                  serve={k.replace("-", "_"): v for k, v in serve.items()})


def default_data_dir() -> Path:
    # Imported here: platformdirs costs ~8 ms (measured with -X importtime), which a
    # store named by --db or TUI_OAUTH_DB, and a TAB, never need.
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return default_data_dir() / "tui-oauth.db"


def resolve_db_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The database URL: ``--db`` first, then ``TUI_OAUTH_DB``, then the config file's
    ``db``, then the default file.

    A plain path (no ``://``) is taken as a SQLite file.  The config file is read even
    when ``--db`` or ``TUI_OAUTH_DB`` wins over its ``db``: a broken file is a
    ConfigError whatever names the store, so that it is not found only later, by
    another command or by ``serve``.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    value = (explicit or source.get(ENV_DB) or "").strip()
    config = load_config(source)
    if not value:
        value = config.db or ""
    if not value:
        return f"sqlite:///{default_db_path()}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def is_default_location(url: str) -> bool:
    """Whether ``url`` (resolved) is the default store, the one made on first use."""
    return url == f"sqlite:///{default_db_path()}"
