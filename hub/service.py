"""The hub as pages see it: one object, one method per question, sessions inside.

Pages hold a `Hub` (built once per process) and never open sessions, import the
models or SQLAlchemy. Each method runs in its own transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine

from hub import overview
from hub.settings import Settings, load_settings
from hub.store import make_engine, transaction


class Hub:
    """Entry point of every page."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Hub:
        settings = settings or load_settings()
        return cls(make_engine(settings.database_url), settings)

    def province_overview(self) -> overview.ProvinceOverview:
        with transaction(self.engine) as session:
            return overview.province_overview(session=session)
