"""The Dockerfile's promises, checked by parsing it (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_is_a_slim_official_python_image():
    [base] = [arg for word, arg in instructions() if word == "FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base)


def test_runs_as_a_non_root_user():
    users = [arg for word, arg in instructions() if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_command_is_serve():
    [cmd] = [arg for word, arg in instructions() if word == "CMD"]
    assert cmd == '["sync-service", "serve"]'


def test_has_a_healthcheck_on_healthz():
    [check] = [arg for word, arg in instructions() if word == "HEALTHCHECK"]
    assert "/healthz" in check
    assert "--interval" in check


def test_config_and_mappings_are_mountable():
    volumes = " ".join(arg for word, arg in instructions() if word == "VOLUME")
    assert "/app/config" in volumes
    assert "/app/mappings" in volumes


def test_the_container_listens_on_every_interface_the_service_on_loopback():
    env = " ".join(arg for word, arg in instructions() if word == "ENV")
    assert "SYNC_HTTP_HOST=0.0.0.0" in env
