"""What a command needs, built once and lazily: settings, the store engine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import Engine

from sync_service.settings import Settings, load_settings
from sync_service.store.engine import make_engine, upgrade


@dataclass
class AppContext:
    """Settings and store for one CLI invocation or one scheduled job."""

    config_path: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    json_output: bool = False
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The validated settings; raises SettingsError on the first access if invalid."""
        if self._settings is None:
            self._settings = load_settings(self.config_path, self.env)
        return self._settings

    @cached_property
    def engine(self) -> Engine:
        """The store engine, migrated to the newest schema on first use."""
        engine = make_engine(self.settings.database_url)
        upgrade(engine)
        return engine

    def raw_engine(self) -> Engine:
        """An engine without the automatic upgrade (for ``db upgrade`` itself)."""
        return make_engine(self.settings.database_url)
