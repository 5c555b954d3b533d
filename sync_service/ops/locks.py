"""One active runner per job, across processes and replicas.

On PostgreSQL a job holds a *session-level* advisory lock (``pg_try_advisory_lock``) on a
dedicated connection for as long as it runs. The lock belongs to that database session: if the
process dies, even by SIGKILL, the server ends the session and the lock is gone, so a dead
replica never leaves a stuck lock. The connection asks the server for TCP keepalives, so a
replica whose host vanishes is noticed in about a minute too.

On SQLite (one machine by definition) the lock is an OS file lock (``filelock``) on a file next
to the database; the kernel drops it when the process dies.

The lock is re-entrant within one thread: a job wrapper (the scheduler) and the job itself
(the pipeline) may both ask for it, and the inner request is a no-op.

Two kinds of lock share this mechanism. The scheduler holds the *job* lock (``salesforce``)
for a whole scheduled job; the pipeline holds a *stage* lock (``stage.salesforce``,
``stage.evaluate``, ...) around each run record it writes, whoever calls it (scheduler or CLI).
A stage lock guards the run records of its stage: whoever takes ``stage.<name>`` is the only
writer of ``<name>`` runs, so a ``running`` row of ``<name>`` still in ``runs`` was left by a
runner that died (SIGKILL, host lost) and is closed as ``failed`` with a note before the new
run opens.

A lock that is busy raises :class:`~canonical.errors.LockBusyError`: the caller skips this run
(another runner is doing the work), it is not a failure.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock, Timeout
from sqlalchemy.engine import Engine

from canonical.errors import LockBusyError, StoreError
from sync_service.ops.runs import utcnow
from sync_service.store.models import runs

log = logging.getLogger(__name__)

#: Locks this thread holds, as (database, job): a nested job_lock of the same job is a no-op.
_held = threading.local()

#: Prefix of the pipeline's stage locks, which guard the run records of their stage.
STAGE_PREFIX = "stage."

#: Namespaces the lock keys so that another application sharing the database cannot collide.
_NAMESPACE = "advocate-sync:job:"


class LockHandle:
    """A held lock; :meth:`alive` says whether it is still held.

    A PostgreSQL advisory lock lives as long as its database session: if the connection drops
    (database restart, network cut, ``pg_terminate_backend``) the lock is gone and another
    replica may take it. :meth:`alive` asks the lock's own connection; only one thread (the
    scheduler's watcher) may call it while the job runs.
    """

    def __init__(self, job: str, conn: sa.Connection | None = None) -> None:
        self.job = job
        self._conn = conn
        self._lost = False

    def alive(self) -> bool:
        """True while the lock is held (file locks cannot be lost)."""
        if self._conn is None or self._lost:
            return not self._lost
        try:
            # A checked-out connection is never silently replaced: if this answers, it is the
            # same session, so the session-level lock is still ours.
            self._conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            self._lost = True
        return not self._lost


def lock_key(job: str) -> int:
    """A stable signed 64-bit key for ``job`` (the same in every process and release)."""
    digest = hashlib.sha256((_NAMESPACE + job).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _busy(job: str) -> LockBusyError:
    return LockBusyError(
        f"job '{job}' is already running in another process; this run is skipped",
        job=job,
    )


@contextmanager
def _pg_lock(engine: Engine, job: str) -> Iterator[LockHandle]:
    key = lock_key(job)
    # AUTOCOMMIT: the lock outlives transactions, and a job must not hold one transaction open
    # for hours on this connection just to keep its lock.
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        try:
            # Server-side keepalives (settable per session) end the session, and so free the
            # lock, soon after the client host disappears without closing its socket.
            conn.execute(sa.text("SET tcp_keepalives_idle = 30"))
            conn.execute(sa.text("SET tcp_keepalives_interval = 10"))
            conn.execute(sa.text("SET tcp_keepalives_count = 3"))
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        except sa.exc.SQLAlchemyError as exc:
            msg = f"cannot take the lock of job '{job}': the database is unreachable ({exc.code})"
            raise StoreError(msg, job=job) from None
        if not got:
            raise _busy(job)
        log.debug("lock taken", extra={"job": job})
        try:
            yield LockHandle(job, conn)
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except sa.exc.SQLAlchemyError:
                # The session is gone or broken; make sure it is not reused from the pool with
                # the lock still held: closing the connection for good ends the session.
                log.warning("could not release the lock of job '%s'; closing its session", job)
                conn.invalidate()
    finally:
        conn.close()


def _sqlite_lock_path(engine: Engine, job: str) -> Path:
    database = engine.url.database
    safe_job = "".join(c if c.isalnum() or c in "-_" else "_" for c in job)
    if database and database != ":memory:" and not database.startswith("file:"):
        db = Path(database)
        return db.with_name(f"{db.name}.{safe_job}.lock")
    # An in-memory database lives in one process; a per-user temp file still serialises threads.
    return Path(tempfile.gettempdir()) / f"advocate-sync-memory.{safe_job}.lock"


@contextmanager
def _file_lock(engine: Engine, job: str) -> Iterator[LockHandle]:
    path = _sqlite_lock_path(engine, job)
    # A new FileLock object per attempt: each opens its own file description, so two threads of
    # one process exclude each other too (a shared object would be re-entrant).
    lock = FileLock(str(path), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise _busy(job) from None
    log.debug("lock taken", extra={"job": job})
    try:
        yield LockHandle(job)
    finally:
        lock.release()


def held_elsewhere(engine: Engine, job: str) -> bool:
    """Whether another runner (process, replica or thread) holds the lock of ``job`` now.

    PostgreSQL: read from ``pg_locks``, without taking the lock, so a runner starting at this
    moment is never turned away. SQLite: a file lock can only be probed by taking it, so it is
    taken and released at once (a job starting in that instant is skipped, as when it really
    is busy; on SQLite ``serve`` runs its jobs one at a time, so only a CLI run can meet this).
    """
    if engine.dialect.name == "postgresql":
        # A bigint advisory key shows as its high half in classid, its low half in objid.
        key = lock_key(job) & 0xFFFF_FFFF_FFFF_FFFF
        query = sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid) "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        )
        with engine.connect() as conn:
            return bool(
                conn.execute(query, {"hi": str(key >> 32), "lo": str(key & 0xFFFF_FFFF)}).scalar()
            )
    lock = FileLock(str(_sqlite_lock_path(engine, job)), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def close_abandoned_runs(engine: Engine, job: str) -> int:
    """Close ``running`` rows of ``job`` as failed; only while holding ``stage.<job>``.

    Returns:
        How many rows were closed.
    """
    with engine.begin() as conn:
        result = conn.execute(
            runs.update()
            .where(runs.c.job == job, runs.c.status == "running")
            .values(
                status="failed",
                finished_at=utcnow(),
                error=(
                    "abandoned: its process stopped before closing the run (killed or host "
                    "lost); the next run resumes from the saved watermarks"
                ),
            )
        )
        closed = int(result.rowcount or 0)
    if closed:
        log.warning("closed %d abandoned run(s) of job '%s'", closed, job)
    return closed


@contextmanager
def job_lock(engine: Engine, job: str, *, close_abandoned: bool = True) -> Iterator[LockHandle]:
    """Hold the exclusive lock of ``job`` for the ``with`` block (re-entrant per thread).

    Args:
        engine: the store; PostgreSQL gets an advisory lock, SQLite a file lock.
        job: the job's name (``salesforce``, ``reconcile``, ...).
        close_abandoned: for a stage lock (``stage.<name>``), close the ``<name>`` runs a dead
            runner left open once the lock is taken.

    Yields:
        A :class:`LockHandle` (the outer one again when re-entered).

    Raises:
        LockBusyError: another process or thread holds it; skip this run.
        StoreError: the database cannot be reached to take the lock.
    """
    key = (engine.url.render_as_string(hide_password=True), job)
    guarded = job.removeprefix(STAGE_PREFIX) if job.startswith(STAGE_PREFIX) else None
    held: dict[tuple[str, str], LockHandle] = _held.__dict__.setdefault("handles", {})
    if key in held:
        yield held[key]
        return
    lock = _pg_lock if engine.dialect.name == "postgresql" else _file_lock
    with lock(engine, job) as handle:
        held[key] = handle
        try:
            if close_abandoned and guarded:
                close_abandoned_runs(engine, guarded)
            yield handle
        finally:
            del held[key]
