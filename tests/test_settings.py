"""Settings: file + environment, every problem reported with where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.errors import SettingsError
from sync_service.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None, env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, env)
    return info.value.problems


def test_defaults_apply_when_the_default_file_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings.database_url == "sqlite:///var/advocate.db"  # ../var from config/
    assert settings.http_port == 8080
    assert settings.source_path is None


def test_environment_overrides_the_file(tmp_path: Path):
    path = write(tmp_path, "http_port: 9000\nsalesforce:\n  api_version: '61.0'\n")
    settings = load_settings(path, {"SYNC_HTTP_PORT": "9100", "DATABASE_URL": "sqlite:///x.db"})
    assert settings.http_port == 9100
    # a relative SQLite path is relative to the settings file's folder, not the working directory
    assert settings.database_url == f"sqlite:///{tmp_path / 'x.db'}"
    assert settings.salesforce.api_version == "61.0"


def test_sync_config_names_the_file(tmp_path: Path):
    path = write(tmp_path, "http_port: 9001\n")
    assert load_settings(None, {"SYNC_CONFIG": str(path)}).http_port == 9001


def test_secret_is_read_from_a_file_named_by_the_environment(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = load_settings(
        write(tmp_path, ""),
        {"SALESFORCE_PASSWORD_FILE": str(secret), "SALESFORCE_USERNAME": "svc@example.com"},
    )
    assert settings.salesforce.password is not None
    assert settings.salesforce.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_wrong_type_in_file_names_file_line_and_setting(tmp_path: Path):
    path = write(tmp_path, "log_level: INFO\nsalesforce:\n  timeout_seconds: -5\n")
    [line] = problems(path, {})
    assert line == (
        f"{path}:3:3: salesforce.timeout_seconds: Input should be greater than 0 (got -5)"
    )


def test_wrong_type_in_environment_names_the_variable(tmp_path: Path):
    [line] = problems(write(tmp_path, ""), {"SYNC_HTTP_PORT": "eighty"})
    assert line.startswith("env SYNC_HTTP_PORT: http_port: Input should be a valid integer")
    assert "(got 'eighty')" in line


def test_unknown_key_is_reported_with_its_position(tmp_path: Path):
    path = write(tmp_path, "gainsight:\n  pagesize: 10\n")
    [line] = problems(path, {})
    assert line == f"{path}:2:3: gainsight.pagesize: unknown setting; did you mean 'page_size'?"


def test_unknown_key_without_a_close_name_points_at_the_reference(tmp_path: Path):
    path = write(tmp_path, "colour: blue\n")
    [line] = problems(path, {})
    assert line == (
        f"{path}:1:1: colour: unknown setting; check the spelling against the configuration "
        "reference"
    )


@pytest.mark.parametrize("cron", ["0 3 * *", "61 25 * * *", "every night", "* * * * * * *"])
def test_an_invalid_cron_expression_is_a_settings_error_at_its_line(tmp_path: Path, cron: str):
    path = write(tmp_path, f"jobs:\n  reconcile:\n    cron: '{cron}'\n")
    [line] = problems(path, {})
    assert line.startswith(f"{path}:3:5: jobs.reconcile.cron: '{cron}' is not a crontab expression")
    assert "e.g. '0 3 * * *'" in line


def test_a_misspelt_job_name_is_refused_with_a_suggestion(tmp_path: Path):
    path = write(
        tmp_path,
        "jobs:\n  salesforce: {interval_minutes: 30}\n  gainsigt: {interval_minutes: 60}\n",
    )
    [line] = problems(path, {})
    assert line.startswith(f"{path}:1:1: jobs: unknown job 'gainsigt'; did you mean 'gainsight'?")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgress://u@h/db", "unknown database scheme 'postgress'; did you mean 'postgres'?"),
        ("not-a-url://x", "unknown database scheme 'not-a-url'"),
        ("just-text", "'just-text' is not a database URL"),
        ("postgresql+nodriver://u@h/db", "is not a usable database URL"),
        ("postgresql://", "the database URL names no host"),
    ],
)
def test_a_bad_database_url_is_one_line_naming_the_variable(
    tmp_path: Path, url: str, expected: str
):
    [line] = problems(write(tmp_path, ""), {"DATABASE_URL": url})
    assert line.startswith("env DATABASE_URL: database_url: ")
    assert expected in line
    assert "\n" not in line


def test_relative_paths_are_relative_to_the_settings_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    cfg = project / "config" / "settings.yaml"
    cfg.write_text("mappings_dir: ../maps\ndatabase_url: sqlite:///../var/store.db\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(cfg, {})
    assert settings.mappings_dir == project / "maps"
    assert settings.rules_file == project / "config" / "rules.yaml"  # the default
    assert settings.database_url == f"sqlite:///{project / 'var' / 'store.db'}"
    assert settings.base_dir == project / "config"


def test_without_a_settings_file_the_defaults_are_relative_to_the_default_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings.mappings_dir == Path("mappings")
    assert settings.rules_file == Path("config/rules.yaml")


def test_a_missing_key_file_is_reported_with_the_resolved_path(tmp_path: Path):
    path = write(tmp_path, "salesforce:\n  private_key_file: keys/jwt.pem\n")
    [line] = problems(path, {})
    assert line.startswith(
        f"{path}:2:3: salesforce.private_key_file: '{tmp_path / 'keys' / 'jwt.pem'}'"
    )
    assert "relative to the settings file's folder" in line


def test_a_latin1_byte_is_one_line_with_its_position(tmp_path: Path):
    path = tmp_path / "settings.yaml"
    path.write_bytes(b"http_port: 8080\n# caf\xe9\n")
    [line] = problems(path, {})
    assert line.startswith(f"{path}:2:6: byte 0xe9 is not UTF-8")


def test_secret_in_the_file_is_refused_without_echoing_it(tmp_path: Path):
    path = write(tmp_path, "salesforce:\n  password: hunter2\n")
    [line] = problems(path, {})
    assert line == (
        f"{path}:2:3: salesforce.password: secrets are not read from the settings file; "
        "remove it and set SALESFORCE_PASSWORD or SALESFORCE_PASSWORD_FILE"
    )
    assert "hunter2" not in line


def test_every_problem_is_reported_at_once(tmp_path: Path):
    path = write(tmp_path, "http_port: 70000\nlog_level: LOUD\n")
    lines = problems(path, {"SALESFORCE_API_VERSION": "latest"})
    assert len(lines) == 3
    assert any(line.startswith(f"{path}:1:1: http_port:") for line in lines)
    assert any(line.startswith(f"{path}:2:1: log_level:") for line in lines)
    assert any(
        line.startswith("env SALESFORCE_API_VERSION: salesforce.api_version:") for line in lines
    )


def test_auth_flow_without_its_credentials_says_which_variables_to_set(tmp_path: Path):
    path = write(tmp_path, "salesforce:\n  auth_flow: jwt\n")
    [line] = problems(path, {"SALESFORCE_CLIENT_ID": "cid"})
    assert line == (
        f"{path}:1:1: salesforce: auth_flow 'jwt' needs SALESFORCE_USERNAME, "
        "SALESFORCE_PRIVATE_KEY_FILE; set them or choose another flow"
    )


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path):
    path = write(tmp_path, "salesforce:\n  login_url: [oops\n")
    [line] = problems(path, {})
    assert line.startswith(f"{path}:3:1: YAML syntax error:")


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    [line] = problems(tmp_path / "nope.yaml", {})
    assert line.endswith(
        "nope.yaml: file not found; create it or point the setting at the right file"
    )


def test_unreadable_secret_file_is_an_error(tmp_path: Path):
    [line] = problems(write(tmp_path, ""), {"GAINSIGHT_ACCESS_KEY_FILE": str(tmp_path / "missing")})
    assert line.startswith("env GAINSIGHT_ACCESS_KEY_FILE: cannot read")


def test_gainsight_url_without_key_is_an_error(tmp_path: Path):
    [line] = problems(
        write(tmp_path, ""), {"GAINSIGHT_BASE_URL": "https://acme.gainsightcloud.com"}
    )
    assert "GAINSIGHT_ACCESS_KEY" in line


def test_job_needs_exactly_one_trigger(tmp_path: Path):
    path = write(tmp_path, "jobs:\n  salesforce: {cron: '* * * * *', interval_minutes: 5}\n")
    [line] = problems(path, {})
    assert line.startswith(
        f"{path}:2:3: jobs.salesforce: give exactly one of cron or interval_minutes"
    )


def test_privacy_settings_are_checked_whole(tmp_path: Path):
    path = write(
        tmp_path,
        "privacy:\n  deleted_days: -1\n  free_text_fields: {notes: [x]}\n  retain: forever\n",
    )
    lines = problems(path, {})
    assert len(lines) == 3
    assert any(line.startswith(f"{path}:2:3: privacy.deleted_days:") for line in lines)
    assert any("privacy.free_text_fields.notes" in line for line in lines)
    assert any("privacy.retain: unknown setting" in line for line in lines)


def test_the_privacy_key_is_a_secret(tmp_path: Path):
    path = write(tmp_path, "privacy:\n  key: not-in-a-file-please\n")
    [line] = problems(path, {})
    assert "set SYNC_PRIVACY_KEY or SYNC_PRIVACY_KEY_FILE" in line
    assert "not-in-a-file-please" not in line
    key = load_settings(None, {"SYNC_PRIVACY_KEY": "k" * 20}).privacy.key
    assert key is not None
    assert key.get_secret_value() == "k" * 20


def test_the_shipped_settings_file_lists_and_comments_every_key() -> None:
    from pydantic import BaseModel

    from sync_service.settings import SECRET_PATHS, JobSettings, Settings

    root = Path(__file__).resolve().parents[1]
    text = (root / "config" / "settings.yaml").read_text(encoding="utf-8")
    load_settings(root / "config" / "settings.yaml", {})  # valid as shipped
    lines = text.splitlines()

    def documented(name: str, section: str | None) -> bool:
        start = 0
        if section is not None:
            start = next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
        for line in lines[start:]:
            body = line.strip().removeprefix("# ")
            if body.startswith(f"{name}:"):
                return "#" in line.split(":", 1)[1] or line.strip().startswith("#")
        return False

    missing = []
    for name, field in Settings.model_fields.items():
        if field.exclude or (name,) in SECRET_PATHS or name == "jobs":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in annotation.model_fields:
                if (name, sub) not in SECRET_PATHS and not documented(sub, name):
                    missing.append(f"{name}.{sub}")
        elif name != "webhook_url" and not documented(name, None):
            missing.append(name)
    missing += [f"jobs.{k}" for k in JobSettings.model_fields if k not in text]
    assert missing == []
