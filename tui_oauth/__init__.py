"""tui-oauth: an OAuth 1.0a administration console for the terminal."""

__version__ = "0.1.0"
APP_NAME = "tui-oauth"
