"""Alembic migrations, run from code (``upgrade``) and by ``tui-oauth db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

from tui_oauth.core.sqlite_reads import HEAD

HERE = Path(__file__).resolve().parent
# HEAD, the newest revision, is kept in core/sqlite_reads.py (importable without
# SQLAlchemy), so that opening an up-to-date store costs one SELECT instead of loading
# Alembic's script directory; tests/service/test_database.py checks that it matches the scripts.
__all__ = ["HEAD", "alembic_config", "current_revision", "upgrade"]


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, read directly (importing Alembic costs ~80 ms)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"the database has several schema heads: {rows}")
    return rows[0] if rows else None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema; returns (revision before, revision after)."""
    before = current_revision(engine)
    if revision == "head" and before == HEAD:
        return before, before
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
    return before, current_revision(engine)
