"""What the connectors' configs share: pydantic models, one source of fields for the service too.

Each connector declares its settings once, in two layers:

* ``<X>Options`` -- what an admin sets (``config/settings.yaml`` under ``salesforce:`` or
  ``gainsight:``, and the documented environment variables). The service's settings model
  for that system *is* this model plus a few service-only fields (``enabled``, the sync
  overlap): it is defined by inheritance, so a field added here is a setting at once, with the
  same name, default and limits.
* ``<X>Config(<X>Options)`` -- what the connector runs with: the options plus values the
  service supplies at run time (CA bundle, batch size, User-Agent, polling), listed in
  :attr:`ConnectorConfig.RUNTIME_FIELDS`.

The connector never imports the service; the service builds a config with
:meth:`ConnectorConfig.from_options`. Unknown keys are errors (``extra="forbid"``), never
dropped. Secrets are :class:`pydantic.SecretStr`: hidden from ``repr`` and logs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from canonical.errors import ConfigError


def reveal(secret: SecretStr | None) -> str:
    """The secret's text ('' for None): only where it is sent to the CRM."""
    return secret.get_secret_value() if secret is not None else ""


class ConnectorOptions(BaseModel):
    """Base of the options an admin sets for one system."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ConnectorConfig(ConnectorOptions):
    """Base of a connector's config: its options plus the values supplied at run time.

    Invalid values raise :class:`~canonical.errors.ConfigError` listing every problem as
    ``<section>.<field>: what is wrong``.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    #: The options model this config extends (its fields come from the admin's settings).
    OPTIONS: ClassVar[type[ConnectorOptions]]
    #: The section of the settings these options live under (``salesforce``), for messages.
    SECTION: ClassVar[str]
    #: Fields the service supplies at run time, not an admin.
    RUNTIME_FIELDS: ClassVar[frozenset[str]]

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = [
                f"{type(self).SECTION}.{'.'.join(str(p) for p in err['loc']) or 'config'}: "
                f"{err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            ]
            raise ConfigError(problems[0], problems=problems) from None

    @classmethod
    def from_options(cls, options: ConnectorOptions, **values: Any) -> Self:
        """The config for ``options`` (or the service's settings built on them) plus ``values``.

        Every option field is taken from ``options``; a field the service's settings add beyond
        them (``enabled``) is the service's own. ``values`` gives run-time fields (or overrides
        an option); a name the config does not have is an error, as everywhere.
        """
        taken = {name: getattr(options, name) for name in cls.OPTIONS.model_fields}
        return cls(**{**taken, **values})
