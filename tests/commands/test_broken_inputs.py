"""Every kind of broken input an admin can make, fed to validate, status, run-once and serve.

Each must end with exit 2, one ``error:`` line per problem naming ``file:line`` (or the
environment variable), the same lines from every command, and never a traceback: ``validate``
passing means the service starts, and ``validate`` failing means it refuses to.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync_service.cli import main
from sync_service.store.engine import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (["validate"], ["status"], ["run-once"], ["serve"])

SETTINGS = """\
database_url: sqlite:///../var/store.db
mappings_dir: ../mappings
rules_file: rules.yaml
gainsight: {enabled: false}
jobs:
  salesforce: {interval_minutes: 30}
  reconcile: {cron: "0 3 * * *"}
"""

#: ``error: <where>: ...``: where is file:line[:col], a file or folder, or an env variable.
LINE = re.compile(r"^error: (env [A-Z_]+|/\S+?(:\d+(:\d+)?)?): \S")


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    @property
    def settings(self) -> Path:
        return self.root / "config" / "settings.yaml"

    @property
    def rules(self) -> Path:
        return self.root / "config" / "rules.yaml"

    @property
    def sf(self) -> Path:
        return self.root / "mappings" / "salesforce.yaml"

    def sub(self, path: Path, old: str, new: str) -> None:
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def append(self, path: Path, text: str) -> None:
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@dataclass
class Case:
    id: str
    breaks: Callable[[Project], None]
    needle: str
    #: where the line must point: (file relative to the project, or "env VAR", line or None)
    where: tuple[str, int | None]


def _latin1(path_of: Callable[[Project], Path]) -> Callable[[Project], None]:
    def breaks(p: Project) -> None:
        path = path_of(p)
        path.write_bytes(path.read_bytes().replace(b"\n", b"\n# caf\xe9\n", 1))

    return breaks


def _oversize(path_of: Callable[[Project], Path]) -> Callable[[Project], None]:
    def breaks(p: Project) -> None:
        with path_of(p).open("a", encoding="utf-8") as fh:
            fh.write(("# " + "x" * 1022 + "\n") * 2048)  # 2 MiB of comments

    return breaks


S, R, M = "config/settings.yaml", "config/rules.yaml", "mappings/salesforce.yaml"

CASES = [
    # settings: schedules and jobs
    Case(
        "cron-4-fields",
        lambda p: p.sub(p.settings, '"0 3 * * *"', '"0 3 * *"'),
        "'0 3 * *' is not a crontab expression",
        (S, 7),
    ),
    Case(
        "cron-out-of-range",
        lambda p: p.sub(p.settings, '"0 3 * * *"', '"61 25 * * *"'),
        "'61 25 * * *' is not a crontab expression",
        (S, 7),
    ),
    Case(
        "cron-words",
        lambda p: p.sub(p.settings, '"0 3 * * *"', '"every night"'),
        "'every night' is not a crontab expression",
        (S, 7),
    ),
    Case(
        "job-misspelt",
        lambda p: p.sub(p.settings, "  salesforce: {", "  salesforse: {"),
        "unknown job 'salesforse'; did you mean 'salesforce'?",
        (S, 5),
    ),
    Case(
        "job-two-triggers",
        lambda p: p.sub(
            p.settings, "{interval_minutes: 30}", "{interval_minutes: 30, cron: '* * * * *'}"
        ),
        "give exactly one of cron or interval_minutes",
        (S, 6),
    ),
    Case(
        "job-negative-interval",
        lambda p: p.sub(p.settings, "interval_minutes: 30", "interval_minutes: -5"),
        "greater than 0",
        (S, 6),
    ),
    # settings: the database
    Case(
        "db-scheme-typo",
        lambda p: p.sub(p.settings, "sqlite:///", "postgress://u@h/"),
        "unknown database scheme 'postgress'; did you mean 'postgres'?",
        (S, 1),
    ),
    Case(
        "db-not-a-url",
        lambda p: p.sub(p.settings, "sqlite:///../var/store.db", "not-a-url://x"),
        "unknown database scheme 'not-a-url'",
        (S, 1),
    ),
    Case(
        "db-plain-text",
        lambda p: p.sub(p.settings, "sqlite:///../var/store.db", "store.db"),
        "'store.db' is not a database URL",
        (S, 1),
    ),
    Case(
        "db-unknown-driver",
        lambda p: p.sub(p.settings, "sqlite:///../var/store.db", "postgresql+nodriver://u@h/db"),
        "is not a usable database URL",
        (S, 1),
    ),
    Case(
        "env-db-scheme",
        lambda p: p.env.update(DATABASE_URL="postgress://u@h/db"),
        "unknown database scheme 'postgress'",
        ("env DATABASE_URL", None),
    ),
    # settings: keys, types, secrets, files
    Case(
        "unknown-key",
        lambda p: p.append(p.settings, "http_prot: 80\n"),
        "unknown setting; did you mean 'http_port'?",
        (S, 8),
    ),
    Case(
        "unknown-nested-key",
        lambda p: p.append(p.settings, "salesforce:\n  timeout_secs: 5\n"),
        "unknown setting; did you mean 'timeout_seconds'?",
        (S, 9),
    ),
    Case(
        "wrong-type",
        lambda p: p.append(p.settings, "http_port: eighty\n"),
        "Input should be a valid integer",
        (S, 8),
    ),
    Case(
        "out-of-range",
        lambda p: p.append(p.settings, "http_port: 70000\n"),
        "less than or equal to 65535",
        (S, 8),
    ),
    Case("bad-choice", lambda p: p.append(p.settings, "log_level: LOUD\n"), "log_level", (S, 8)),
    Case(
        "secret-in-file",
        lambda p: p.append(p.settings, "salesforce:\n  password: hunter2\n"),
        "secrets are not read from the settings file",
        (S, 9),
    ),
    Case(
        "settings-yaml-syntax",
        lambda p: p.append(p.settings, "salesforce: [oops\n"),
        "YAML syntax error",
        (S, None),
    ),
    Case("settings-latin1", _latin1(lambda p: p.settings), "byte 0xe9 is not UTF-8", (S, 2)),
    Case("settings-oversize", _oversize(lambda p: p.settings), "over the 1 MiB limit", (S, None)),
    Case(
        "settings-not-a-mapping",
        lambda p: p.settings.write_text("- a\n- b\n"),
        "the settings file must be a mapping",
        (S, 1),
    ),
    Case(
        "mappings-dir-missing",
        lambda p: p.sub(p.settings, "../mappings", "../maps"),
        "is not a folder (relative paths are relative to the settings file's folder",
        (S, 2),
    ),
    Case(
        "rules-file-missing",
        lambda p: p.sub(p.settings, "rules.yaml", "rule.yaml"),
        "is not a file (relative paths are relative to the settings file's folder",
        (S, 3),
    ),
    Case(
        "key-file-missing",
        lambda p: p.append(p.settings, "salesforce:\n  private_key_file: keys/jwt.pem\n"),
        "does not exist or is not a file",
        (S, 9),
    ),
    Case(
        "env-port",
        lambda p: p.env.update(SYNC_HTTP_PORT="eighty"),
        "Input should be a valid integer",
        ("env SYNC_HTTP_PORT", None),
    ),
    Case(
        "env-api-version",
        lambda p: p.env.update(SALESFORCE_API_VERSION="latest"),
        "api_version",
        ("env SALESFORCE_API_VERSION", None),
    ),
    Case(
        "env-gainsight-without-key",
        lambda p: (
            p.sub(p.settings, "gainsight: {enabled: false}", "gainsight: {enabled: true}"),
            p.env.update(GAINSIGHT_BASE_URL="https://acme.gainsightcloud.com"),
        ),
        "GAINSIGHT_ACCESS_KEY",
        (S, 4),
    ),
    # mappings
    Case("mapping-latin1", _latin1(lambda p: p.sf), "byte 0xe9 is not UTF-8", (M, 2)),
    Case("mapping-oversize", _oversize(lambda p: p.sf), "over the 1 MiB limit", (M, None)),
    Case(
        "mapping-yaml-syntax",
        lambda p: p.sub(
            p.sf, "name: {from: Name, required: true}", "name: {from: Name, required: true"
        ),
        "YAML syntax error",
        (M, None),
    ),
    Case(
        "mapping-field-typo",
        lambda p: p.sub(p.sf, "email: {from: Email", "emial: {from: Email"),
        "did you mean 'email'?",
        (M, 36),
    ),
    Case(
        "mapping-file-name",
        lambda p: shutil.copy(p.sf, p.root / "mappings" / "salesforc.yaml"),
        "unknown mapping file",
        ("mappings/salesforc.yaml", None),
    ),
    Case(
        "mapping-duplicate-key",
        lambda p: p.sub(
            p.sf,
            "      industry: Industry\n",
            "      industry: Industry\n      industry: Industry\n",
        ),
        "duplicate key",
        (M, None),
    ),
    Case("mapping-not-a-mapping", lambda p: p.sf.write_text("- a\n"), "", (M, 1)),
    Case(
        "mapping-dir-empty",
        lambda p: [f.unlink() for f in (p.root / "mappings").iterdir()],
        "no mapping files",
        ("mappings", None),
    ),
    # rules
    Case(
        "rule-hash-comment",
        lambda p: p.sub(
            p.rules, "    when: >-\n      opted_in\n", "    when: opted_in #AND nps_latest >= 9\n"
        ),
        "an unquoted ' #' starts a YAML comment",
        (R, 66),
    ),
    Case(
        "rule-leading-bang",
        lambda p: p.sub(p.rules, "    when: >-\n      opted_out\n", "    when: !opted_in\n"),
        "which YAML reads as a tag",
        (R, 59),
    ),
    Case(
        "score-inverted",
        lambda p: p.sub(p.rules, "      min: 6\n      max: 10\n", "      min: 10\n      max: 6\n"),
        "min (10) is above max (6)",
        (R, 160),
    ),
    Case(
        "score-empty-range",
        lambda p: p.sub(p.rules, "      min: 6\n      max: 10\n", "      min: 6\n      max: 6\n"),
        "min and max must differ",
        (R, 161),
    ),
    Case(
        "rule-key-typo",
        lambda p: p.sub(p.rules, "    reason: not opted in\n", "    reasn: not opted in\n"),
        "did you mean 'reason'?",
        (R, 68),
    ),
    Case(
        "rules-version-typo",
        lambda p: p.sub(p.rules, "version:", "verson:"),
        "did you mean 'version'?",
        (R, None),
    ),
    Case(
        "rules-unknown-feature",
        lambda p: p.sub(p.rules, "      opted_in\n    reason", "      opted_inn\n    reason"),
        "did you mean 'opted_in'?",
        (R, 67),
    ),
    Case("rules-latin1", _latin1(lambda p: p.rules), "byte 0xe9 is not UTF-8", (R, 2)),
    Case("rules-oversize", _oversize(lambda p: p.rules), "over the 1 MiB limit", (R, None)),
    Case(
        "rules-yaml-syntax",
        lambda p: p.append(p.rules, "fatigue: [oops\n"),
        "YAML syntax error",
        (R, None),
    ),
    Case(
        "rules-duplicate-id",
        lambda p: p.sub(p.rules, "  - id: recent_promoter", "  - id: opted_in"),
        "duplicate rule id 'opted_in'",
        (R, 71),
    ),
    Case(
        "rules-cap-without-window",
        lambda p: p.sub(p.rules, "      window_days: 30\n", ""),
        "window_days",
        (R, None),
    ),
    Case(
        "rules-time-zone",
        lambda p: p.sub(p.rules, "timezone: UTC", "timezone: Mars/Olympus"),
        "unknown time zone",
        (R, 28),
    ),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "mappings", root / "mappings")
    (root / "config").mkdir()
    shutil.copy(ROOT / "config" / "rules.yaml", root / "config" / "rules.yaml")
    (root / "config" / "settings.yaml").write_text(SETTINGS, encoding="utf-8")
    engine = make_engine(f"sqlite:///{root / 'var' / 'store.db'}")
    upgrade(engine)
    engine.dispose()
    for var in list(__import__("os").environ):
        if var.startswith(("SYNC_", "SALESFORCE_", "GAINSIGHT_")) or var in (
            "DATABASE_URL",
            "REQUESTS_CA_BUNDLE",
        ):
            monkeypatch.delenv(var)
    elsewhere = tmp_path / "elsewhere"  # the working directory plays no part
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return Project(root, {})


def test_the_unbroken_project_is_valid(project: Project, capsys: pytest.CaptureFixture[str]):
    assert main(["--config", str(project.settings), "validate"]) == 0
    assert main(["--config", str(project.settings), "status"]) == 0
    assert "error" not in capsys.readouterr().err


def test_there_are_at_least_40_kinds_of_broken_input() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_input_stops_every_command_with_one_line_per_problem(
    case: Case,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case.breaks(project)
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, list[str]] = {}
    for command in COMMANDS:
        code = main(["--config", str(project.settings), *command])
        out, err = capsys.readouterr()
        assert code == 2, (command, out, err)
        assert "Traceback" not in err + out
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors, (command, err)
        for line in errors:
            assert LINE.match(line), line
        hit = [line for line in errors if case.needle in line]
        assert hit, (command, case.needle, errors)
        where, line_no = case.where
        prefix = where if where.startswith("env ") else str(project.root / where)
        expected = f"error: {prefix}" + (f":{line_no}:" if line_no else "")
        assert any(line.startswith(expected) for line in hit), (expected, hit)
        seen[command[0]] = errors
    # the same lines from every command: validate's verdict is the service's
    assert seen["validate"] == seen["run-once"] == seen["serve"]
    assert set(seen["status"]) == set(seen["validate"])


def test_problems_in_several_files_are_all_listed_at_once(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.sub(project.settings, '"0 3 * * *"', '"0 3 * *"')
    project.sub(project.sf, "email: {from: Email", "emial: {from: Email")
    project.sub(project.rules, "      min: 6\n      max: 10\n", "      min: 10\n      max: 6\n")
    assert main(["--config", str(project.settings), "validate"]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error: ")]
    assert len(errors) == 3
    assert [e.split(":", 2)[1].split("/")[-1] for e in errors] == [
        "settings.yaml",
        "salesforce.yaml",
        "rules.yaml",
    ]
