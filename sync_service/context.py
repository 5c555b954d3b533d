"""What a command needs, built once and lazily: settings, the store engine."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import SettingsError
from sync_service.ops.runs import Run
from sync_service.settings import Settings, load_settings
from sync_service.store.engine import make_engine, normalise_url, upgrade

if TYPE_CHECKING:
    from sync_service.mapping import Mappings
    from sync_service.mapping.runtime import MappingStore

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Settings and store for one CLI invocation or one scheduled job."""

    config_path: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    json_output: bool = False
    _settings: Settings | None = None
    #: Rejected config edits already announced on the webhook by this process (their digests).
    notified_edits: set[str] = field(default_factory=set)

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

    def close(self) -> None:
        """Release the store's pooled connections, if the engine was ever built.

        A process would drop them at exit anyway; an in-process caller (a test, a job runner
        reusing ``main``) would otherwise leave them open until garbage collection.
        """
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    def raw_engine(self) -> Engine:
        """An engine without the automatic upgrade (for ``db upgrade`` itself)."""
        return make_engine(self.settings.database_url)

    @cached_property
    def mapping_store(self) -> MappingStore:
        """The process's mappings, with the last valid version kept beside the store."""
        from sync_service.mapping.runtime import MappingStore

        return MappingStore(self.settings.mappings_dir, self.var_dir / "mappings.last-valid.json")

    @property
    def var_dir(self) -> Path:
        """Where local state lives: beside a SQLite store, else ``var/``."""
        url = sa.make_url(normalise_url(self.settings.database_url))
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).parent
        return Path("var")

    def privacy_key(self) -> bytes:
        """The tombstones' HMAC key (see :mod:`sync_service.privacy.keys`)."""
        from sync_service.privacy.keys import load_key

        return load_key(self.settings.privacy, self.var_dir)

    def mappings(self, run: Run | None = None) -> Mappings:
        """The field mappings, re-read from disk for every run.

        An invalid edit is rejected whole: the problems go to the log and the run record, and
        the last valid mappings keep running. With no valid mappings ever seen, it raises.

        Raises:
            MappingError: the files are invalid and there is no last valid version.
        """
        refresh = self.mapping_store.refresh()
        if refresh.error is not None and run is not None:
            run.config_errors.extend(refresh.problems)
        return refresh.mappings


def require_existing_store(ctx: AppContext) -> None:
    """For commands that only read (``status``, ``explain``): a missing SQLite file is an error.

    Opening it would create an empty store and report nothing, which hides a wrong path.

    Raises:
        SettingsError: the SQLite file does not exist.
    """
    url = sa.make_url(normalise_url(ctx.settings.database_url))
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return
    if not Path(db).is_file():
        msg = (
            f"{ctx.settings.origin('database_url')}: database_url: no store at '{db}'; run "
            "`sync-service sync` first, or point DATABASE_URL at the store (relative paths are "
            f"relative to the settings file's folder, {ctx.settings.base_dir}/)"
        )
        raise SettingsError(msg)
