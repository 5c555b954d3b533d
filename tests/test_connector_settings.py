"""The Salesforce and Gainsight settings are the connectors' own options: one definition.

``SalesforceSettings``/``GainsightSettings`` extend the connectors' options models; the
connector configs extend the same models with run-time fields. These tests fail when a field is
added to one side and not the other, or when the factory drops a setting on its way to the
connector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from canonical.model import System
from connectors.config import ConnectorConfig
from connectors.gainsight.config import GainsightConfig, GainsightOptions
from connectors.salesforce.config import SalesforceConfig, SalesforceOptions
from sync_service.factory import build_connector
from sync_service.settings import ENV_VARS, GainsightSettings, SalesforceSettings, Settings

MODELS: dict[System, tuple[type[BaseModel], type[BaseModel], type[ConnectorConfig]]] = {
    System.SALESFORCE: (SalesforceSettings, SalesforceOptions, SalesforceConfig),
    System.GAINSIGHT: (GainsightSettings, GainsightOptions, GainsightConfig),
}


def _non_defaults(system: System, tmp_path: Path) -> dict[str, Any]:
    """A value other than the default for every option an admin can set."""
    if system == System.SALESFORCE:
        key = tmp_path / "server.key"
        key.write_text("not read here")
        return {
            "login_url": "https://login.example.test",
            "auth_flow": "client_credentials",
            "client_id": "cid",
            "client_secret": "s3cret-value",
            "username": "integration@example.test",
            "password": "pw-value",
            "security_token": "tok-value",
            "private_key_file": key,
            "access_token": "at-value",
            "instance_url": "https://acme.example.test",
            "api_version": "61.0",
            "timeout_seconds": 33.0,
            "max_attempts": 3,
            "query_batch_size": 500,
            "bulk_query_threshold": 7,
            "bulk_write_threshold": 9,
            "budget_share": 0.5,
            "run_budget_share": 0.25,
        }
    return {
        "base_url": "https://acme.example.test",
        "access_key": "k3y-value",
        "timeout_seconds": 7.0,
        "max_attempts": 2,
        "page_size": 100,
        "calls_per_minute": 50,
        "calls_per_day": 1000,
        "budget_share": 0.5,
    }


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize("system", list(System), ids=str)
def test_the_settings_are_the_connector_options_plus_the_service_fields(system: System) -> None:
    settings_cls, options_cls, _ = MODELS[system]
    service = settings_cls.SERVICE_FIELDS  # type: ignore[attr-defined]
    assert issubclass(settings_cls, options_cls)
    assert set(settings_cls.model_fields) == set(options_cls.model_fields) | service
    assert not service & set(options_cls.model_fields)


@pytest.mark.parametrize("system", list(System), ids=str)
def test_the_connector_config_is_the_options_plus_the_run_time_fields(system: System) -> None:
    _, options_cls, config_cls = MODELS[system]
    assert issubclass(config_cls, options_cls)
    assert config_cls.OPTIONS is options_cls
    assert set(config_cls.model_fields) == set(options_cls.model_fields) | config_cls.RUNTIME_FIELDS
    assert not config_cls.RUNTIME_FIELDS & set(options_cls.model_fields)


@pytest.mark.parametrize("system", list(System), ids=str)
def test_settings_and_connector_config_share_defaults_and_limits(system: System) -> None:
    settings_cls, options_cls, config_cls = MODELS[system]
    for name in options_cls.model_fields:
        setting, config = settings_cls.model_fields[name], config_cls.model_fields[name]
        assert list(map(repr, setting.metadata)) == list(map(repr, config.metadata)), name
        if not config.is_required():  # the tenant and its key are required only to connect
            assert setting.default == config.default, name


@pytest.mark.parametrize("system", list(System), ids=str)
def test_every_option_set_in_the_settings_reaches_the_connector(
    system: System, tmp_path: Path
) -> None:
    settings_cls, options_cls, _ = MODELS[system]
    values = _non_defaults(system, tmp_path)
    # A new option needs a value here: then this test proves the factory passes it on.
    assert set(values) == set(options_cls.model_fields)
    for name, value in values.items():
        assert _plain(options_cls.model_fields[name].default) != value, name
    settings = Settings(**{system.value: settings_cls(**values)})
    connector = build_connector(settings, system)
    try:
        config = connector.config  # type: ignore[attr-defined]
        for name, value in values.items():
            assert _plain(getattr(config, name)) == value, name
    finally:
        connector.close()


def test_every_documented_environment_variable_names_a_setting() -> None:
    for var, path in ENV_VARS.items():
        model: type[BaseModel] = Settings
        for key in path[:-1]:
            annotation = model.model_fields[key].annotation
            assert isinstance(annotation, type)
            assert issubclass(annotation, BaseModel)
            model = annotation
        assert path[-1] in model.model_fields, var


def test_unknown_keys_in_a_section_are_errors_not_dropped(tmp_path: Path) -> None:
    from canonical.errors import SettingsError
    from sync_service.settings import load_settings

    cfg = tmp_path / "settings.yaml"
    cfg.write_text("salesforce:\n  batch_size: 10\ngainsight:\n  pagesize: 10\n")
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, {})
    text = "\n".join(info.value.problems)
    assert "salesforce.batch_size: unknown setting" in text
    assert "gainsight.pagesize: unknown setting" in text
