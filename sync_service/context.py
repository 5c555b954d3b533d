"""What a command needs, built once and lazily: settings, the store engine."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from canonical.errors import MappingError
from sync_service.runs import Run
from sync_service.settings import Settings, load_settings
from sync_service.store.engine import make_engine, upgrade

if TYPE_CHECKING:
    from sync_service.mapping import Mappings

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Settings and store for one CLI invocation or one scheduled job."""

    config_path: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    json_output: bool = False
    _settings: Settings | None = None
    _mappings: Mappings | None = None

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

    def mappings(self, run: Run | None = None) -> Mappings:
        """The field mappings, re-read from disk for every run.

        An invalid edit is rejected whole: the problems go to the log and the run record, and
        the last valid mappings keep running. With no valid mappings yet, the error is raised.
        """
        from sync_service.mapping import load_mappings

        try:
            self._mappings = load_mappings(self.settings.mappings_dir)
        except MappingError as exc:
            if self._mappings is None:
                raise
            log.error("mapping edit rejected, the last valid mappings keep running: %s", exc)
            if run is not None:
                run.config_errors.extend(exc.problems)
        return self._mappings
