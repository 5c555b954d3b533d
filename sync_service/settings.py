"""Settings: ``config/settings.yaml`` overlaid by environment variables, validated at once.

Precedence: environment variable > settings file > default. Secrets (passwords, tokens, keys,
webhook URLs) are read only from the environment, or from a file an ``*_FILE`` variable names;
a secret in the settings file is an error, so it never lands in a repository.

The Salesforce and Gainsight sections are the connectors' own options models (declared once, in
``connectors/<system>/config.py``) plus a few service-only fields.

Every problem is reported in one pass, one line each, naming where the value came from::

    config/settings.yaml:12:3: salesforce.timeout_seconds: Input should be greater than 0 (got -5)
    env SYNC_HTTP_PORT: http_port: Input should be a valid integer (got 'eighty')

Relative paths have one base: the folder of the settings file (``config/`` by default, whether
the file exists or not), never the working directory. That holds for every path the settings
name, from the file or the environment: ``mappings_dir`` (default ``../mappings``),
``rules_file`` (default ``rules.yaml``), a SQLite ``database_url`` (default
``sqlite:///../var/advocate.db``), ``ca_bundle``, ``salesforce.private_key_file``,
``privacy.key_file`` and the files
``<VARIABLE>_FILE`` names. So ``sync-service --config /srv/adv/config/settings.yaml status`` reads
the store of ``/srv/adv``, from any directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from canonical.errors import SettingsError
from canonical.model import System
from canonical.yaml import YamlDocument, allowed_keys, did_you_mean, load_yaml, plain
from connectors.gainsight.config import GainsightOptions
from connectors.salesforce.config import SalesforceOptions

DEFAULT_CONFIG_PATH = Path("config/settings.yaml")

#: Jobs ``jobs:`` may schedule. ``salesforce``/``gainsight`` sync and then evaluate and write back.
KNOWN_JOBS = (
    *(s.value for s in System),
    "reconcile",
    "evaluate",
    "evaluate_full",
    "writeback",
    "cycle",
    "asks",
)

#: Database URL schemes the store supports (SQLAlchemy backend names and their aliases).
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")

#: Environment variable -> settings path. These names are shared with docs and the sandbox.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "DATABASE_URL": ("database_url",),
    "SALESFORCE_LOGIN_URL": ("salesforce", "login_url"),
    "SALESFORCE_AUTH_FLOW": ("salesforce", "auth_flow"),
    "SALESFORCE_CLIENT_ID": ("salesforce", "client_id"),
    "SALESFORCE_CLIENT_SECRET": ("salesforce", "client_secret"),
    "SALESFORCE_USERNAME": ("salesforce", "username"),
    "SALESFORCE_PASSWORD": ("salesforce", "password"),
    "SALESFORCE_SECURITY_TOKEN": ("salesforce", "security_token"),
    "SALESFORCE_PRIVATE_KEY_FILE": ("salesforce", "private_key_file"),
    "SALESFORCE_ACCESS_TOKEN": ("salesforce", "access_token"),
    "SALESFORCE_INSTANCE_URL": ("salesforce", "instance_url"),
    "SALESFORCE_API_VERSION": ("salesforce", "api_version"),
    "GAINSIGHT_BASE_URL": ("gainsight", "base_url"),
    "GAINSIGHT_ACCESS_KEY": ("gainsight", "access_key"),
    "SYNC_HTTP_HOST": ("http_host",),
    "SYNC_HTTP_PORT": ("http_port",),
    "SYNC_OPS_TOKEN": ("api", "ops_token"),
    "SYNC_WEBHOOK_URL": ("webhook_url",),
    "SYNC_LOG_LEVEL": ("log_level",),
    "SYNC_LOG_FORMAT": ("log_format",),
    "SYNC_MAPPINGS_DIR": ("mappings_dir",),
    "SYNC_RULES_FILE": ("rules_file",),
    "SYNC_MATCHING_FILE": ("matching_file",),
    "REQUESTS_CA_BUNDLE": ("ca_bundle",),
    "SYNC_PRIVACY_KEY": ("privacy", "key"),
}

#: Settings paths that are secrets: never from the file, and ``<VAR>_FILE`` may name a file.
SECRET_PATHS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("salesforce", "client_secret"),
        ("salesforce", "password"),
        ("salesforce", "security_token"),
        ("salesforce", "access_token"),
        ("gainsight", "access_key"),
        ("webhook_url",),
        ("privacy", "key"),
        ("api", "ops_token"),
    }
)

_Strict = ConfigDict(extra="forbid", validate_default=True)


class SalesforceSettings(SalesforceOptions):
    """How to reach and how hard to use the Salesforce org.

    The fields, defaults and limits are the connector's own (:class:`SalesforceOptions`);
    :data:`SERVICE_FIELDS` are the service's additions.
    """

    model_config = _Strict

    #: Fields the service adds to the connector's options; every other field is the connector's.
    SERVICE_FIELDS: ClassVar[frozenset[str]] = frozenset({"enabled", "overlap_seconds"})

    enabled: bool = True
    overlap_seconds: int = Field(300, ge=0, le=86_400)

    @model_validator(mode="after")
    def _credentials_fit_the_flow(self) -> SalesforceSettings:
        if not self.enabled:
            return self
        need: dict[str, tuple[str, ...]] = {
            "jwt": ("client_id", "username", "private_key_file"),
            "client_credentials": ("client_id", "client_secret"),
            "password": ("username", "password"),
            "token": ("access_token", "instance_url"),
        }
        missing = [f for f in need.get(self.auth_flow, ()) if getattr(self, f) is None]
        if missing:
            names = ", ".join("SALESFORCE_" + f.upper() for f in missing)
            msg = f"auth_flow '{self.auth_flow}' needs {names}; set them or choose another flow"
            raise ValueError(msg)
        return self


class GainsightSettings(GainsightOptions):
    """How to reach and how hard to use the Gainsight tenant.

    The fields, defaults and limits are the connector's own (:class:`GainsightOptions`);
    :data:`SERVICE_FIELDS` are the service's additions.
    """

    model_config = _Strict

    #: Fields the service adds to the connector's options; every other field is the connector's.
    SERVICE_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"enabled", "overlap_seconds", "writeback_enabled"}
    )

    enabled: bool = True
    overlap_seconds: int = Field(300, ge=0, le=86_400)
    writeback_enabled: bool = False

    @model_validator(mode="after")
    def _reachable(self) -> GainsightSettings:
        if self.enabled and self.base_url and self.access_key is None:
            msg = "base_url is set but GAINSIGHT_ACCESS_KEY is not; set it or disable gainsight"
            raise ValueError(msg)
        return self


class SyncSettings(BaseModel):
    """Batching and reconciliation of the pull into the store."""

    model_config = _Strict

    batch_size: int = Field(2000, ge=1, le=50_000)
    #: Runs, confirmed outbox rows and resolved quarantine entries older than this are deleted by
    #: the daily reconcile job (the audit trails are kept).
    history_days: int = Field(180, ge=7)


class WritebackSettings(BaseModel):
    """Guards of the writeback to the CRM."""

    model_config = _Strict

    enabled: bool = True
    max_status_change_share: float = Field(0.2, gt=0, le=1)
    min_records_for_guard: int = Field(50, ge=0)
    max_attempts: int = Field(5, ge=1)
    #: Outbox rows per Connector.write call; the connector turns a big batch into a bulk job.
    batch_size: int = Field(10_000, ge=1, le=100_000)
    #: First wait before retrying records the CRM could not lock; doubles per attempt.
    retry_base_seconds: float = Field(0.5, ge=0, le=60)
    retry_max_seconds: float = Field(30.0, ge=0, le=600)


#: Canonical tables whose admin-mapped extra fields may hold free text people wrote.
FreeTextTable = Literal["contacts", "nps_responses", "advocacy_asks", "tickets"]


class PrivacySettings(BaseModel):
    """Erasure, tombstones and retention of personal data (README: Privacy)."""

    model_config = _Strict

    #: Personal data of a record deleted in the CRM is purged this many days after the
    #: service first saw it deleted (by the daily housekeeping).
    deleted_days: int = Field(30, ge=0, le=3650)
    #: Free text (NPS comments and the other fields in ``free_text_fields``) is removed this
    #: many days after it was recorded; None keeps it as long as its record.
    free_text_days: int | None = Field(None, ge=1, le=3650)
    #: Extra fields per canonical table that hold free text people wrote.
    free_text_fields: dict[FreeTextTable, list[str]] = Field(
        default_factory=lambda: {"nps_responses": ["comment"]}  # type: ignore[arg-type]
    )
    #: Write "Opted Out" with the reason "Erased on request" to an erased person's CRM record
    #: (once: an unchanged value is never written again). False leaves their record alone.
    write_erased_status: bool = True
    #: The HMAC key of the tombstones (SYNC_PRIVACY_KEY / SYNC_PRIVACY_KEY_FILE). Without it a
    #: random key is created on first use in ``key_file`` (mode 0600).
    key: SecretStr | None = None
    #: Where the generated key lives; default ``privacy.key`` beside a SQLite store, else var/.
    key_file: Path | None = None


class ApiSettings(BaseModel):
    """The HTTP API served by ``serve``: the ops token and the per-token rate limit."""

    model_config = _Strict

    #: When set, ``/metrics`` and ``/readyz`` answer only with ``Authorization: Bearer <it>``
    #: (``/healthz`` stays open for liveness probes). From ``SYNC_OPS_TOKEN`` only.
    ops_token: SecretStr | None = None
    #: Requests a second each API token may make on average, and the burst it may spend at once.
    rate_limit_per_second: float = Field(50.0, gt=0, le=100_000)
    rate_limit_burst: int = Field(100, ge=1, le=1_000_000)


class JobSettings(BaseModel):
    """One scheduled job: a cron expression or an interval."""

    model_config = _Strict

    enabled: bool = True
    cron: str | None = None
    interval_minutes: float | None = Field(None, gt=0)
    misfire_grace_seconds: int = Field(600, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_crontab(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            msg = (
                f"'{value}' is not a crontab expression ({exc}); write five fields: "
                "minute hour day-of-month month day-of-week, e.g. '0 3 * * *' for 03:00 UTC daily"
            )
            raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSettings:
        if self.enabled and (self.cron is None) == (self.interval_minutes is None):
            msg = "give exactly one of cron or interval_minutes"
            raise ValueError(msg)
        return self


class CoverageTarget(BaseModel):
    """How many Eligible advocates each value of one field should have."""

    model_config = _Strict

    #: Every value of the field (those with contacts, and those named below).
    at_least: int = Field(0, ge=0)
    #: Per value, overriding ``at_least``; a value named here is reported even with no contact.
    values: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class ReportSettings(BaseModel):
    """The program report (``sync-service report`` and ``/report``)."""

    model_config = _Strict

    #: The window of asks the utilisation, demand and most-asked figures look at.
    window_days: int = Field(90, ge=1, le=3650)
    #: How far back the pool and demand charts go.
    history_weeks: int = Field(104, ge=4, le=520)
    #: Rows of the most-asked and under-used lists.
    top: int = Field(20, ge=1, le=1000)
    #: The Salesforce org's URL for links to contacts (default: ``salesforce.instance_url``).
    crm_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    #: Field (``segment``, ``region``, ``industry`` or any mapped field) -> its target.
    coverage_targets: dict[str, CoverageTarget] = Field(default_factory=dict)


def _default_jobs() -> dict[str, JobSettings]:
    return {
        System.SALESFORCE.value: JobSettings(interval_minutes=30),
        System.GAINSIGHT.value: JobSettings(interval_minutes=60),
        "reconcile": JobSettings(cron="0 3 * * *"),
        # Stamps requests made directly in the CRM with the guard's verdict (cheap, incremental).
        "asks": JobSettings(interval_minutes=2),
    }


class Settings(BaseSettings):
    """Everything the service reads at start, validated in one pass."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    database_url: str = "sqlite:///../var/advocate.db"
    mappings_dir: Path = Path("../mappings")
    rules_file: Path = Path("rules.yaml")
    #: The reference matching rules; None: no matching (no suggestions on deals).
    matching_file: Path | None = None
    ca_bundle: Path | None = None
    #: The address ``serve`` listens on; a container sets 0.0.0.0 (see the Dockerfile).
    http_host: str = Field("127.0.0.1", min_length=1)
    http_port: int = Field(8080, ge=0, le=65_535)
    webhook_url: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)  # type: ignore[arg-type]
    gainsight: GainsightSettings = Field(default_factory=GainsightSettings)  # type: ignore[arg-type]
    sync: SyncSettings = Field(default_factory=SyncSettings)
    writeback: WritebackSettings = Field(default_factory=WritebackSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    jobs: dict[str, JobSettings] = Field(default_factory=_default_jobs)
    report: ReportSettings = Field(default_factory=ReportSettings)

    #: Where the settings came from, for messages; not a setting.
    source_path: Path | None = Field(None, exclude=True)
    #: The folder relative paths were resolved against (the settings file's); not a setting.
    base_dir: Path = Field(Path("config"), exclude=True)
    #: Where each path setting came from (``file:line:col`` or ``env VAR``), for messages.
    origins: dict[str, str] = Field(default_factory=dict, exclude=True)

    def origin(self, key: str) -> str:
        """Where setting ``key`` came from, for a message (the base folder when unknown)."""
        return self.origins.get(key) or f"{self.base_dir}/ (defaults)"

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("jobs")
    @classmethod
    def _known_jobs(cls, value: dict[str, JobSettings]) -> dict[str, JobSettings]:
        unknown = [name for name in value if name not in KNOWN_JOBS]
        if unknown:
            parts = [f"'{name}'{did_you_mean(name, KNOWN_JOBS)}" for name in unknown]
            msg = f"unknown job {'; unknown job '.join(parts)}; jobs are {', '.join(KNOWN_JOBS)}"
            raise ValueError(msg)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values load_settings() passes in; see the comment below."""
        # load_settings() merges the file and the named environment variables itself, so that
        # every error can say where its value came from; pydantic-settings' own env matching
        # would accept names the docs never promise.
        return (init_settings,)


def check_database_url(value: str) -> str:
    """``value`` when it is a database URL the store can use; else a one-line ValueError.

    Checks the form, the scheme (with a did-you-mean) and that the driver is installed, so a
    typo fails ``validate`` rather than the first job.
    """
    hint = "use sqlite:///path/to/file.db or postgresql://user@host:5432/db"
    scheme = value.split("://", 1)[0] if "://" in value else ""
    backend, _, driver = scheme.partition("+")
    if not scheme:
        msg = f"'{value}' is not a database URL; {hint}"
        raise ValueError(msg)
    if backend not in DATABASE_SCHEMES:
        msg = f"unknown database scheme '{scheme}'{did_you_mean(backend, DATABASE_SCHEMES)}; {hint}"
        raise ValueError(msg)
    normal = "postgresql" + value[len("postgres") :] if backend == "postgres" else value
    if backend in ("postgres", "postgresql") and not driver:
        normal = "postgresql+psycopg" + normal[len("postgresql") :]
    try:
        url = sa.make_url(normal)
        url.get_dialect().import_dbapi()
    except ImportError:
        msg = f"the database driver '{driver}' is not installed; leave it out ({backend}://...)"
        raise ValueError(msg) from None
    except Exception as exc:  # sa.exc.ArgumentError, NoSuchModuleError, a bad port...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"'{scheme}://...' is not a usable database URL ({first}); {hint}"
        raise ValueError(msg) from None
    if backend != "sqlite" and not url.host:
        msg = f"the database URL names no host; {hint}"
        raise ValueError(msg)
    return value


def resolve_path(base: Path, path: Path) -> Path:
    """``path`` resolved against ``base`` (the settings file's folder) when it is relative."""
    if path.is_absolute():
        return path
    return Path(os.path.normpath(base / path.expanduser()))


def _resolve_database(base: Path, value: str) -> str:
    url = sa.make_url(value)
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return value
    resolved = str(resolve_path(base, Path(db)))
    return value if resolved == db else url.set(database=resolved).render_as_string(False)


def _resolve_paths(settings: Settings, base: Path) -> None:
    """Make every relative path of ``settings`` relative to ``base`` (see the module doc)."""
    settings.base_dir = base
    settings.mappings_dir = resolve_path(base, settings.mappings_dir)
    settings.rules_file = resolve_path(base, settings.rules_file)
    if settings.matching_file is not None:
        settings.matching_file = resolve_path(base, settings.matching_file)
    if settings.ca_bundle is not None:
        settings.ca_bundle = resolve_path(base, settings.ca_bundle)
    if settings.salesforce.private_key_file is not None:
        settings.salesforce.private_key_file = resolve_path(
            base, settings.salesforce.private_key_file
        )
    if settings.privacy.key_file is not None:
        settings.privacy.key_file = resolve_path(base, settings.privacy.key_file)
    settings.database_url = _resolve_database(base, settings.database_url)


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _read_secret_file(var: str, file_name: str, base: Path) -> str:
    try:
        return resolve_path(base, Path(file_name)).read_text(encoding="utf-8").strip()
    except OSError as exc:
        msg = f"env {var}_FILE: cannot read '{file_name}' ({exc.strerror}); fix the path"
        raise SettingsError(msg) from None


def config_path_from(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The settings file to read: ``--config``, else ``SYNC_CONFIG``, else the default."""
    if explicit:
        return Path(explicit)
    if env.get("SYNC_CONFIG"):
        return Path(env["SYNC_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings file and the environment; validate everything at once.

    Args:
        path: the settings file (``--config``); defaults to ``SYNC_CONFIG`` or
            ``config/settings.yaml``. A missing default file is fine (defaults apply); a
            missing file that was asked for is an error.
        env: the environment (``os.environ`` when None).

    Raises:
        SettingsError: listing every problem, one line each.
    """
    env = os.environ if env is None else env
    explicit = bool(path) or bool(env.get("SYNC_CONFIG"))
    cfg_path = config_path_from(path, env)
    doc: YamlDocument | None = None
    data: dict[str, Any] = {}
    problems: list[str] = []
    if cfg_path.exists() or explicit:
        doc = load_yaml(cfg_path, SettingsError)
        if doc.data is None:
            data = {}
        elif not isinstance(doc.data, dict):
            problems.append(f"{cfg_path}:1:1: the settings file must be a mapping of keys")
        else:
            data = plain(doc.data)

    for secret in sorted(SECRET_PATHS):
        node: Any = data
        for key in secret:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            var = next(v for v, p in ENV_VARS.items() if p == secret)
            where = doc.where(secret) if doc else str(cfg_path)
            problems.append(
                f"{where}: {'.'.join(secret)}: secrets are not read from the settings file; "
                f"remove it and set {var} or {var}_FILE"
            )

    from_env: dict[tuple[str, ...], str] = {}
    for var, target in ENV_VARS.items():
        value = env.get(var)
        if target in SECRET_PATHS and not value and env.get(f"{var}_FILE"):
            try:
                value = _read_secret_file(var, env[f"{var}_FILE"], cfg_path.parent)
            except SettingsError as exc:
                problems.append(str(exc))
                continue
        if value:
            _set_path(data, target, value)
            from_env[target] = var

    if problems:
        raise SettingsError(problems[0], problems=problems)

    try:
        settings = Settings(**data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            origin = _origin(loc, from_env, doc, cfg_path)
            got = ""
            shows_input = err["type"] not in ("missing", "extra_forbidden", "value_error")
            if shows_input and loc and loc not in SECRET_PATHS:
                got = f" (got {err.get('input')!r})"
            text = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                close = did_you_mean(loc[-1], allowed_keys(Settings, loc[:-1])) if loc else ""
                close = close or "; check the spelling against the configuration reference"
                text = f"unknown setting{close}"
            problems.append(f"{origin}: {'.'.join(loc) or 'settings'}: {text}{got}")
        raise SettingsError(problems[0], problems=problems) from None
    settings.source_path = cfg_path if doc else None
    _resolve_paths(settings, cfg_path.parent)
    for key in ("mappings_dir", "rules_file", "matching_file", "database_url"):
        settings.origins[key] = _origin((key,), from_env, doc, cfg_path)
    files: dict[tuple[str, ...], Path | None] = {
        ("salesforce", "private_key_file"): settings.salesforce.private_key_file
        if settings.salesforce.enabled
        else None,
        ("ca_bundle",): settings.ca_bundle,
    }
    for loc, file in files.items():
        if file is not None and not file.is_file():
            origin = _origin(loc, from_env, doc, cfg_path)
            problems.append(
                f"{origin}: {'.'.join(loc)}: '{file}' does not exist or is not a file "
                f"(relative paths are relative to the settings file's folder {_shown(cfg_path)})"
            )
    if problems:
        raise SettingsError(problems[0], problems=problems)
    return settings


def _shown(cfg_path: Path) -> str:
    return (
        str(cfg_path.parent) if str(cfg_path.parent) not in ("", ".") else "(the working directory)"
    )


def _origin(
    loc: tuple[str, ...],
    from_env: dict[tuple[str, ...], str],
    doc: YamlDocument | None,
    cfg_path: Path,
) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in from_env:
            return f"env {from_env[loc[:n]]}"
    if doc is not None:
        return doc.where(list(loc))
    return f"{cfg_path} (defaults)"
