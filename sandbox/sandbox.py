"""``Sandbox``: a local Salesforce org and Gainsight tenant over HTTPS, for tests, demo, benchmarks.

::

    with Sandbox(accounts=200, seed=7) as sb:
        session = requests.Session()
        session.verify = sb.ca_bundle
        ...  # point the service at sb.env(), or the clients at sb.salesforce_url
        sb.faults.fail_next(503)
        sb.update("Contact", contact_id, {"Title": "CTO"})
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from sandbox.certs import make_key_material
from sandbox.faults import ApiCounter, Faults
from sandbox.gainsight import GainsightApp
from sandbox.http import HttpsServer, server_context
from sandbox.org import Org
from sandbox.salesforce import Credentials, SalesforceApp
from sandbox.schema import Field
from sandbox.seed import DEFAULT_CONTACTS_PER_ACCOUNT, SEED_VERSION, seed
from sandbox.store import (
    GAINSIGHT,
    SALESFORCE,
    SandboxStore,
    gainsight_path,
    quote,
)

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "62.0"
CACHE_MIN_ACCOUNTS = 10_000
_CACHE_KEEP_SECONDS = 3 * 86400


def cache_dir() -> Path:
    """Where seeded databases are cached (``SANDBOX_CACHE_DIR`` or the temp folder)."""
    folder = os.environ.get("SANDBOX_CACHE_DIR")
    return Path(folder) if folder else Path(tempfile.gettempdir()) / "advocate-sandbox-cache"


def _prune_cache(folder: Path) -> None:
    """Drop cached seeds not used for a few days (they are big: ~1 GB at 200,000 accounts)."""
    cutoff = time.time() - _CACHE_KEEP_SECONDS
    for item in folder.glob("org-*"):
        with contextlib.suppress(OSError):
            if item.stat().st_mtime < cutoff:
                item.unlink()


def default_now() -> dt.datetime:
    """The seed's reference time when none is given: today at 00:00 UTC.

    Midnight keeps a day's runs identical and every seeded timestamp in the past, so a sync
    that caps its watermark at the real clock never skips a seeded record.
    """
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)


class Sandbox:
    """A seeded Salesforce org and Gainsight tenant served over HTTPS on 127.0.0.1.

    Args:
        accounts: how many Salesforce accounts to seed (about 5 contacts each).
        seed: the random seed; the same seed and ``now`` give the same data.
        port: the Salesforce port (0: any free port).
        gainsight_port: the Gainsight port (0: any free port).
        now: the reference time seeded dates are relative to (default: today 00:00 UTC).
        contacts_per_account: the average number of contacts per account.
        api_version: the API version ``env()`` points the service at.
        cache: reuse a seeded database made earlier with the same parameters (kept in
            ``$SANDBOX_CACHE_DIR`` or the temp folder); default: only for orgs of
            10,000 accounts or more, where seeding takes seconds.
        progress: called with a short line as each part of the seed is done.
    """

    def __init__(
        self,
        accounts: int = 200,
        seed: int = 7,
        port: int = 0,
        *,
        gainsight_port: int = 0,
        now: dt.datetime | None = None,
        contacts_per_account: int = DEFAULT_CONTACTS_PER_ACCOUNT,
        api_version: str = DEFAULT_API_VERSION,
        cache: bool | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.accounts = accounts
        self.seed = seed
        self.now = now or default_now()
        if self.now.tzinfo is None:
            msg = "now must be timezone-aware (UTC)"
            raise ValueError(msg)
        self._port = port
        self._gs_port = gainsight_port
        self.contacts_per_account = contacts_per_account
        self.api_version = api_version
        self.cache = cache
        self.progress = progress
        self.faults = Faults(seed)
        self._counter = ApiCounter()
        self._dir: Path | None = None
        self._sf_server: HttpsServer | None = None
        self._gs_server: HttpsServer | None = None
        self._org: Org | None = None
        self._sf_app: SalesforceApp | None = None
        self.seed_counts: dict[str, int] = {}
        self.credentials: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Make keys, seed the data, start both servers.

        Whatever fails on the way (a port in use, a full disk), nothing is left behind: the
        servers started so far stop and the temporary folder, which holds private keys, goes.
        """
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Sandbox:
        self._dir = Path(tempfile.mkdtemp(prefix="advocate-sandbox-"))
        keys = make_key_material(self._dir)
        store = self._seeded_store(self._dir / "org.sqlite")
        self._org = Org(store, self.now)
        self.credentials = {
            "client_id": "3MVG9sandbox" + secrets.token_hex(16),
            "client_secret": secrets.token_hex(32),
            "username": "integration@advocate-sync.sandbox",
            "password": secrets.token_urlsafe(16),
            "private_key_file": str(keys.jwt_private_key),
            "gainsight_access_key": secrets.token_hex(24),
            "refresh_token": "5Aep" + secrets.token_urlsafe(40),
            "access_token": "00D5g000004SbXQ!AQ" + secrets.token_urlsafe(48),
        }
        creds = Credentials(
            client_id=self.credentials["client_id"],
            client_secret=self.credentials["client_secret"],
            username=self.credentials["username"],
            password=self.credentials["password"],
            refresh_token=self.credentials["refresh_token"],
            access_token=self.credentials["access_token"],
            jwt_public_key=keys.jwt_public_key_pem,
        )
        context = server_context(str(keys.server_cert), str(keys.server_key))
        self._sf_app = SalesforceApp(
            self._org, self.faults, self._counter, creds, lambda: self.salesforce_url
        )
        gs_app = GainsightApp(
            self._org,
            self.faults,
            self._counter,
            lambda: self.credentials["gainsight_access_key"],
        )
        self._sf_server = HttpsServer(self._port, self._sf_app, context)
        self._gs_server = HttpsServer(self._gs_port, gs_app, context)
        self._sf_server.start()
        self._gs_server.start()
        self._ca = keys.ca_cert
        log.info(
            "sandbox listening: salesforce %s, gainsight %s",
            self.salesforce_url,
            self.gainsight_url,
        )
        return self

    def _cache_file(self) -> Path | None:
        use = self.cache if self.cache is not None else self.accounts >= CACHE_MIN_ACCOUNTS
        if not use:
            return None
        key = (
            f"v{SEED_VERSION}-a{self.accounts}-s{self.seed}-c{self.contacts_per_account}-"
            f"{self.now.strftime('%Y%m%dT%H%M%S')}"
        )
        return cache_dir() / f"org-{key}.sqlite"

    def _seeded_store(self, path: Path) -> SandboxStore:
        """Seed a fresh database, or copy a cached seed of the same parameters.

        Seeding 200,000 accounts takes about a minute; a benchmark that runs several times a
        day copies the cached file instead (a second or two).
        """
        cached = self._cache_file()
        if cached is not None and cached.is_file() and gainsight_path(cached).is_file():
            for src, dst in ((cached, path), (gainsight_path(cached), gainsight_path(path))):
                shutil.copyfile(src, dst)
                with contextlib.suppress(OSError):
                    os.utime(src)  # recently used: keep it
            store = SandboxStore(path, create=False)
            store.attach_gainsight()
            row = store.fetchone('SELECT "counts" FROM "_sandbox_meta"')
            self.seed_counts = json.loads(row[0])
            log.info("sandbox seed copied from cache %s", cached)
            return store
        store = SandboxStore(path)
        summary = seed(
            store,
            accounts=self.accounts,
            seed=self.seed,
            now=self.now,
            contacts_per_account=self.contacts_per_account,
            progress=self.progress,
        )
        self.seed_counts = summary.counts
        store.execute('CREATE TABLE "_sandbox_meta" ("counts" TEXT)')
        store.execute('INSERT INTO "_sandbox_meta" VALUES (?)', (json.dumps(summary.counts),))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _prune_cache(cached.parent)
            with store.lock:
                # Gainsight's file first: the main file's presence marks a complete entry, and
                # each lands by an atomic rename so a concurrent reader never sees half a file.
                for src, dst in ((gainsight_path(path), gainsight_path(cached)), (path, cached)):
                    partial = dst.with_name(f"{dst.name}.{os.getpid()}.part")
                    shutil.copyfile(src, partial)
                    partial.replace(dst)
        return store

    def stop(self) -> None:
        """Stop both servers and remove the temporary folder."""
        for server in (self._sf_server, self._gs_server):
            if server is not None:
                server.stop()
        self._sf_server = self._gs_server = None
        if self._org is not None:
            self._org.store.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is -------------------------------------------------------------------------
    @property
    def org(self) -> Org:
        """The records behind both servers."""
        if self._org is None:
            msg = "the sandbox is not started; use it as a context manager"
            raise RuntimeError(msg)
        return self._org

    @property
    def salesforce_url(self) -> str:
        """Login and instance URL of the Salesforce side (``https://127.0.0.1:PORT``)."""
        assert self._sf_server is not None, "sandbox not started"
        return f"https://127.0.0.1:{self._sf_server.port}"

    @property
    def gainsight_url(self) -> str:
        """Base URL of the Gainsight side."""
        assert self._gs_server is not None, "sandbox not started"
        return f"https://127.0.0.1:{self._gs_server.port}"

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate (PEM) the servers' certificate chains to."""
        return str(self._ca)

    def session(self) -> requests.Session:
        """A ``requests.Session`` that trusts the sandbox's CA.

        ``trust_env`` is off because requests lets a ``REQUESTS_CA_BUNDLE`` in the environment
        override ``session.verify``; a service session must handle that the same way.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_bundle
        return session

    def env(self, flow: str = "jwt") -> dict[str, str]:
        """Environment variables that point the service at this sandbox.

        Args:
            flow: the Salesforce auth flow: ``jwt`` (default), ``client_credentials``,
                ``password`` or ``token``.
        """
        creds = self.credentials
        env = {
            "SALESFORCE_LOGIN_URL": self.salesforce_url,
            "SALESFORCE_AUTH_FLOW": flow,
            "SALESFORCE_CLIENT_ID": creds["client_id"],
            "SALESFORCE_API_VERSION": self.api_version,
            "GAINSIGHT_BASE_URL": self.gainsight_url,
            "GAINSIGHT_ACCESS_KEY": creds["gainsight_access_key"],
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
        }
        if flow == "jwt":
            env["SALESFORCE_USERNAME"] = creds["username"]
            env["SALESFORCE_PRIVATE_KEY_FILE"] = creds["private_key_file"]
        elif flow == "client_credentials":
            env["SALESFORCE_CLIENT_SECRET"] = creds["client_secret"]
        elif flow == "password":
            env["SALESFORCE_CLIENT_SECRET"] = creds["client_secret"]
            env["SALESFORCE_USERNAME"] = creds["username"]
            env["SALESFORCE_PASSWORD"] = creds["password"]
        elif flow == "token":
            env["SALESFORCE_ACCESS_TOKEN"] = creds["access_token"]
            env["SALESFORCE_INSTANCE_URL"] = self.salesforce_url
        else:
            msg = f"unknown auth flow {flow!r}"
            raise ValueError(msg)
        return env

    # -- accounting --------------------------------------------------------------------------
    @property
    def api_calls(self) -> Counter[str]:
        """API calls so far, per system and per kind.

        Keys: ``salesforce``, ``gainsight`` (totals) and ``salesforce.query``,
        ``salesforce.composite`` (sObject Collections), ``salesforce.composite_request`` (the
        Composite resource: one call, however many subrequests), ``salesforce.jobs``,
        ``salesforce.sobjects``,
        ``gainsight.query``, ``gainsight.update``, ...; ``salesforce.token`` counts logins,
        which are not API calls.
        """
        return self._counter.snapshot()

    @property
    def api_used(self) -> int:
        """Salesforce's daily usage counter (what ``Sforce-Limit-Info`` reports as used)."""
        assert self._sf_app is not None
        return self._sf_app.api_used

    @api_used.setter
    def api_used(self, value: int) -> None:
        assert self._sf_app is not None
        self._sf_app.api_used = value

    # -- data helpers ------------------------------------------------------------------------
    def records(self, obj: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of a Salesforce or Gainsight object as a dict (small orgs: tests)."""
        return list(self.org.iter_records(obj, include_deleted=include_deleted))

    def record(self, obj: str, record_id: str) -> dict[str, Any] | None:
        """One record by id (deleted ones too), or None."""
        return self.org.get(obj, record_id)

    def count(self, obj: str, *, include_deleted: bool = False) -> int:
        """How many records ``obj`` has (Salesforce: not deleted unless asked)."""
        system = self.org.system_of(obj)
        where = "" if include_deleted or system == GAINSIGHT else ' WHERE "IsDeleted" = 0'
        return int(
            self.org.store.fetchone(
                f"SELECT COUNT(*) FROM {self.org.store.table(system, obj)}{where}"
            )[0]
        )

    def update(self, obj: str, record_id: str, fields: dict[str, Any]) -> None:
        """Change a record as a user would (any field but the id), bumping its modstamps."""
        od = self.org.objdef(obj)
        stored: dict[str, Any] = {}
        for name, value in fields.items():
            col, val, err = self.org.coerce(od, name, value, check_access=False)
            if err is not None:
                raise ValueError(err.message)
            stored[col] = val
        key = self.org.key(obj)
        if self.org.get(obj, record_id) is None:
            msg = f"no {obj} with id {record_id}"
            raise KeyError(msg)
        rid = self.org.get(obj, record_id)[key]  # type: ignore[index]
        self.org.apply_updates(obj, [(rid, stored)])

    def insert(self, obj: str, fields: dict[str, Any]) -> str:
        """Create a record; return its id."""
        od = self.org.objdef(obj)
        stored = {}
        for name, value in fields.items():
            col, val, err = self.org.coerce(od, name, value, check_access=False)
            if err is not None:
                raise ValueError(err.message)
            stored[col] = val
        return self.org.insert(obj, stored)

    def delete(self, obj: str, record_id: str) -> None:
        """Delete a record: Salesforce's go to the recycle bin, Gainsight's are removed.

        A recycled record has ``IsDeleted`` true and only queryAll returns it.
        """
        if self.org.system_of(obj) == GAINSIGHT:
            self.org.hard_delete(obj, record_id)
        else:
            self.org.soft_delete(obj, record_id)

    def hard_delete(self, obj: str, record_id: str) -> None:
        """Remove a record for good (not even queryAll returns it)."""
        self.org.hard_delete(obj, record_id)

    def merge(self, obj: str, winner_id: str, loser_id: str) -> None:
        """Merge two Accounts or Contacts: the loser is deleted with ``MasterRecordId``."""
        self.org.merge(obj, winner_id, loser_id)

    def add_field(
        self,
        obj: str,
        name: str,
        type: str = "string",
        *,
        length: int = 255,
        picklist: tuple[str, ...] = (),
        restricted: bool = False,
        updateable: bool = True,
        label: str = "",
    ) -> None:
        """Add a (custom) field, as an admin deploying metadata would; describe shows it."""
        system = self.org.system_of(obj)
        od = self.org.objdef(obj)
        if od.field(name) is not None:
            msg = f"{obj}.{name} already exists"
            raise ValueError(msg)
        f = Field(
            name,
            type,
            label or name,
            length=length if type in ("string", "picklist", "email", "textarea") else 0,
            picklist=tuple(picklist),
            restricted=restricted,
            updateable=updateable,
            createable=updateable,
        )
        store = self.org.store
        default = " NOT NULL DEFAULT 0" if type == "boolean" else ""
        with store.lock:
            store.conn.execute(
                f"ALTER TABLE {store.table(system, obj)} ADD COLUMN {quote(name)} "
                f"{f.sql_type}{default}"
            )
            od.fields[name] = f

    def rename_field(self, obj: str, old: str, new: str) -> None:
        """Rename a field (an admin's change that breaks a mapping naming the old name)."""
        system = self.org.system_of(obj)
        od = self.org.objdef(obj)
        f = od.field(old)
        if f is None:
            msg = f"{obj}.{old} does not exist"
            raise KeyError(msg)
        store = self.org.store
        with store.lock:
            store.conn.execute(
                f"ALTER TABLE {store.table(system, obj)} "
                f"RENAME COLUMN {quote(f.name)} TO {quote(new)}"
            )
            od.fields = {(new if k == f.name else k): v for k, v in od.fields.items()}
            f.name = new

    def remove_field(self, obj: str, name: str) -> None:
        """Delete a field (describe stops listing it; queries naming it fail INVALID_FIELD)."""
        system = self.org.system_of(obj)
        od = self.org.objdef(obj)
        f = od.field(name)
        if f is None:
            msg = f"{obj}.{name} does not exist"
            raise KeyError(msg)
        store = self.org.store
        with store.lock:
            store.conn.execute(
                f"ALTER TABLE {store.table(system, obj)} DROP COLUMN {quote(f.name)}"
            )
            del od.fields[f.name]


__all__ = ["GAINSIGHT", "SALESFORCE", "Sandbox"]
