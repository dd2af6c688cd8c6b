"""Alembic migrations, run from code (``upgrade``) and by ``tui-oauth db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

HERE = Path(__file__).resolve().parent

# The newest revision.  Kept here so that opening an up-to-date store costs one
# SELECT instead of loading Alembic's script directory; tests/test_migrations.py
# checks that it matches the scripts.
HEAD = "0001"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema; returns (revision before, revision after)."""
    before = current_revision(engine)
    if revision == "head" and before == HEAD:
        return before, before
    command.upgrade(alembic_config(engine), revision)
    return before, current_revision(engine)
