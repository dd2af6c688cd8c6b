"""tui-oauth: an OAuth 1.0a administration console for the terminal."""

from __future__ import annotations

APP_NAME = "tui-oauth"

__all__ = ["APP_NAME", "__version__"]


def _read_version() -> str:
    """The installed distribution's version (pyproject.toml's, the one version number).

    Read on first use of ``__version__`` (PEP 562), not on import: importing
    importlib.metadata costs about 20 ms (it brings in ``email``), which every command,
    ``--help`` included, would otherwise pay.  In a source tree that was never installed
    there is no metadata: pyproject.toml next to the package says it instead.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(APP_NAME)
    except PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path

    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
            found = tomllib.load(f).get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        found = None
    return found if isinstance(found, str) else "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        value = _read_version()
        globals()["__version__"] = value  # once per process
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
