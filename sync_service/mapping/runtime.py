"""Mappings at run time: re-read before each run; an invalid edit never replaces a valid one.

:class:`MappingStore` is built once per process (scheduler or CLI) and asked
:meth:`~MappingStore.refresh` at the start of every run:

* the files are valid: they become the current mappings and are saved as the *snapshot*;
* the files are invalid: the edit is rejected whole, the problems are logged and returned (for
  the run record and ``status``), and the run goes on with the last valid mappings: the ones in
  memory, or after a restart the snapshot;
* invalid and no snapshot yet (first start on a broken file): :class:`MappingError` is raised;
  there is nothing safe to run with.

The snapshot is one JSON file (default ``var/mappings.last-valid.json``, beside the SQLite
store) holding the digest and the text of every mapping file; it is replaced atomically
(write to a temporary file, then ``os.replace``), so a crash leaves the old or the new one.
It is per machine: each replica keeps the last version it validated itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from canonical.errors import MappingError
from canonical.model import Entity, System
from sync_service.mapping.loader import FILES, digest_files, load_mappings
from sync_service.mapping.model import Mappings

log = logging.getLogger(__name__)

DEFAULT_SNAPSHOT = Path("var/mappings.last-valid.json")


@dataclass(frozen=True)
class MappingRefresh:
    """What :meth:`MappingStore.refresh` found.

    Attributes:
        mappings: the mappings to run with (always valid).
        error: the rejected edit when the files on disk are invalid, else None.
        changed: the mappings differ from the ones the previous refresh returned (always
            True on the first refresh).
        from_snapshot: the mappings come from the snapshot file, not from ``mappings/``.
        changed_streams: ``(system, entity)`` whose read or conversion changed since the
            previous refresh: rows already stored were built by the old mapping, so the
            caller may want to re-read those streams in full.
    """

    mappings: Mappings
    error: MappingError | None = None
    changed: bool = False
    from_snapshot: bool = False
    changed_streams: list[tuple[str, Entity]] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """The rejected edit's problems, one line each (empty when the files are valid)."""
        return list(self.error.problems) if self.error else []


class MappingStore:
    """The current mappings of one process, re-read before each run."""

    def __init__(self, mappings_dir: Path, snapshot_path: Path | None = DEFAULT_SNAPSHOT) -> None:
        """Watch ``mappings_dir``; keep the last valid version at ``snapshot_path``.

        Args:
            mappings_dir: the ``mappings/`` directory admins edit.
            snapshot_path: where the last valid version is kept; None: in memory only.
        """
        self.mappings_dir = Path(mappings_dir)
        self.snapshot_path = snapshot_path
        self._current: Mappings | None = None
        self._from_snapshot = False
        # Scheduled jobs may refresh from several threads at once.
        self._lock = threading.Lock()
        # The files' fingerprint at the last refresh, and the error they gave (if any): an
        # unchanged directory is neither parsed again nor logged again.
        self._probe: str | None = None
        self._error: MappingError | None = None

    @property
    def current(self) -> Mappings | None:
        """The mappings the last refresh returned (None before the first)."""
        return self._current

    def refresh(self) -> MappingRefresh:
        """Re-read the mapping files; keep the last valid mappings when they are invalid.

        Raises:
            MappingError: the files are invalid and no valid version was ever seen (neither
                in this process nor in the snapshot).
        """
        with self._lock:
            return self._refresh()

    def _refresh(self) -> MappingRefresh:
        previous = self._current
        probe = _fingerprint(self.mappings_dir)
        if probe is not None and probe == self._probe and previous is not None:
            return MappingRefresh(
                mappings=previous, error=self._error, from_snapshot=self._from_snapshot
            )
        try:
            fresh = load_mappings(self.mappings_dir)
        except MappingError as exc:
            result = self._rejected(exc, previous)
            self._probe, self._error = probe, exc
            return result
        self._probe, self._error = probe, None
        changed = previous is None or previous.digest != fresh.digest
        if changed or self._from_snapshot:
            self._save_snapshot(fresh)
        self._current = fresh
        self._from_snapshot = False
        if changed and previous is not None:
            log.info(
                "mappings changed (%s -> %s); the new version is in use",
                previous.digest[:12],
                fresh.digest[:12],
            )
        return MappingRefresh(
            mappings=fresh,
            changed=changed,
            changed_streams=changed_streams(previous, fresh),
        )

    def _rejected(self, exc: MappingError, previous: Mappings | None) -> MappingRefresh:
        keep = previous
        from_snapshot = self._from_snapshot
        if keep is None:
            keep = self._load_snapshot()
            from_snapshot = keep is not None
        if keep is None:
            log.error("mappings are invalid and no valid version is known; nothing to run with")
            for line in exc.problems:
                log.error("mapping problem: %s", line)
            raise exc
        log.error(
            "mapping edit rejected (%d problem(s)); still running the last valid version %s%s",
            len(exc.problems),
            keep.digest[:12],
            " from the snapshot" if from_snapshot else "",
        )
        for line in exc.problems:
            log.error("mapping problem: %s", line)
        self._current = keep
        self._from_snapshot = from_snapshot
        return MappingRefresh(
            mappings=keep,
            error=exc,
            changed=previous is None,
            from_snapshot=from_snapshot,
            changed_streams=changed_streams(previous, keep),
        )

    # -- snapshot -------------------------------------------------------------------------

    def _save_snapshot(self, mappings: Mappings) -> None:
        if self.snapshot_path is None:
            return
        files = {
            name: (mappings.path / name).read_text(encoding="utf-8")
            for name in FILES
            if (mappings.path / name).is_file()
        }
        payload = {"format": 1, "digest": mappings.digest, "files": files}
        target = self.snapshot_path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            # Not fatal: the valid version is still in memory; say so and carry on.
            log.warning("cannot save the mapping snapshot %s (%s)", target, exc.strerror)

    def _load_snapshot(self) -> Mappings | None:
        path = self.snapshot_path
        if path is None or not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            files = payload["files"]
            if not isinstance(files, dict) or not files:
                return None
            with tempfile.TemporaryDirectory(prefix="mappings-snapshot-") as tmp:
                for name, text in files.items():
                    if name in FILES:
                        (Path(tmp) / name).write_bytes(str(text).encode("utf-8"))
                loaded = load_mappings(Path(tmp))
        except (OSError, ValueError, KeyError, TypeError, MappingError) as exc:
            log.warning("ignoring the unreadable mapping snapshot %s (%s)", path, exc)
            return None
        return _relocate(loaded, path)


def _fingerprint(directory: Path) -> str | None:
    """A cheap fingerprint of every YAML file in ``directory`` (None: cannot read it)."""
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
        return digest_files(files) if files else None
    except OSError:
        return None


def _relocate(mappings: Mappings, where: Path) -> Mappings:
    """Point a snapshot's paths at the snapshot file (the temporary copy is gone)."""
    sources = {s.system: dataclasses.replace(s, path=where / s.path.name) for s in mappings.sources}
    return dataclasses.replace(
        mappings,
        path=where,
        salesforce=sources.get(System.SALESFORCE),
        gainsight=sources.get(System.GAINSIGHT),
    )


def changed_streams(old: Mappings | None, new: Mappings) -> list[tuple[str, Entity]]:
    """``(system, entity)`` whose stream or field conversion differs between ``old`` and ``new``.

    Everything counts as changed when there is no ``old``.
    """
    out: list[tuple[str, Entity]] = []
    for source in new.sources:
        prior = None
        if old is not None:
            prior = old.salesforce if source.system == System.SALESFORCE else old.gainsight
        for entity, em in source.entities.items():
            before = prior.entities.get(entity) if prior else None
            if (
                before is None
                or before.stream_spec() != em.stream_spec()
                or before.fields != em.fields
                or before.extra_fields != em.extra_fields
            ):
                out.append((source.system, entity))
    return out
