"""The core: models, database, secrets, keys and services. No UI imports here.

Nothing under ``tui_oauth.core`` may import textual, click or starlette; a test
(tests/unit/test_layering.py) enforces it.
"""
