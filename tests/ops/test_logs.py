"""Redaction and formats of the service's logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from sync_service.ops.logs import (
    build_handler,
    clear_registered_secrets,
    configure_logging,
    email_token,
    redact,
    register_secret,
)
from sync_service.settings import load_settings

TOKEN = "00D5g000000AbCd!AQ4AQNl7sD.xTf8s_fake_access_token_9Zq"
PASSWORD = "hunter2-Pa55word"
CLIENT_SECRET = "8F3A9C0B1D2E4F5A6B7C8D9E0F1A2B3C"
GS_KEY = "gs-accesskey-7c1e2f0aa93b"
EMAILS = ["jane.doe@acme-corp.com", "Bob.O'Neil@example.co.uk", "x+tag@sub.mail.example.org"]
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)
SECRETS = [
    TOKEN,
    PASSWORD,
    CLIENT_SECRET,
    GS_KEY,
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
]


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_registered_secrets()
    yield
    clear_registered_secrets()


def _logger(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.ops.redaction.{fmt}")
    logger.handlers = [build_handler(stream, fmt, "DEBUG")]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    for email in EMAILS:
        assert email not in text
        assert email.lower() not in text.lower()
    assert "BEGIN PRIVATE KEY" not in text


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (f"Authorization: Bearer {TOKEN}", "Authorization:"),
        (f"headers={{'Authorization': 'Bearer {TOKEN}', 'Accept': 'json'}}", "'Accept': 'json'"),
        (f"GET /q?access_token={TOKEN}&q=1", "&q=1"),
        (f'{{"access_token": "{TOKEN}", "token_type": "Bearer"}}', '"access_token"'),
        (f"<sessionId>{TOKEN}</sessionId>", "<sessionId>"),
        (f"session {TOKEN} renewed", "renewed"),
        (f"password={PASSWORD}&username=svc", "username=svc"),
        (f"{{'password': '{PASSWORD}'}}", "'password'"),
        (f'body: {{\\"password\\": \\"{PASSWORD}\\"}}', "body:"),
        (f"postgresql://svc:{PASSWORD}@db.internal:5432/adv", "db.internal:5432"),
        (f"client_secret={CLIENT_SECRET}", "client_secret="),
        (f"SALESFORCE_CLIENT_SECRET={CLIENT_SECRET}", "SALESFORCE_CLIENT_SECRET"),
        (f"Accesskey: {GS_KEY}", "Accesskey"),
        (f"key file:\n{PEM}\nend", "end"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJjbGllbnQifQ.c2lnbmF0dXJl done", "done"),
    ],
)
def test_secrets_are_scrubbed_by_shape_or_name(raw: str, kept: str) -> None:
    out = redact(raw)
    _assert_clean(out)
    assert "c2lnbmF0dXJl" not in out
    assert kept in out
    assert redact(out) == out  # scrubbing twice changes nothing (the formatter scrubs again)


def test_emails_become_a_short_stable_hash() -> None:
    out = redact(f"contact {EMAILS[0]} and {EMAILS[0].upper()} changed")
    token = email_token(EMAILS[0])
    assert token.startswith("<email:")
    assert len(token) == len("<email:abcdef>")
    assert out.count(token) == 2  # same person, same token, whatever the case
    assert email_token(EMAILS[1]) != token


def test_ordinary_lines_are_left_alone() -> None:
    line = "synced 2,000 records of stream=Contact in 3.2 s; considered: 7 outside: 3 tokens 5"
    assert redact(line) == line


def test_registered_secret_values_are_scrubbed_verbatim_and_url_encoded() -> None:
    odd = "pl@in text&secret?"  # no key names it, no shape gives it away
    register_secret(SecretStr(odd))
    out = redact(f"sent {odd} then q=pl%40in+text%26secret%3F and pl%40in%20text%26secret%3F")
    assert "pl@in" not in out
    assert "pl%40in" not in out
    register_secret("abc")  # too short to scrub safely: ignored, ordinary words survive
    assert redact("abc def") == "abc def"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_message_args_exception_and_extras_are_all_redacted(fmt: str) -> None:
    logger, stream = _logger(fmt)
    logger.info("login as %s with password=%s", EMAILS[0], PASSWORD)
    logger.warning("token refreshed: %r", {"access_token": TOKEN, "owner": EMAILS[1]})
    logger.info("webhook", extra={"url": f"https://h/?token={TOKEN}", "who": EMAILS[2]})
    try:
        raise ValueError(f"bad response client_secret={CLIENT_SECRET} for {EMAILS[2]}\n{PEM}")
    except ValueError:
        logger.exception("call failed with Accesskey: %s", GS_KEY)
    logger.info("stack", stack_info=True, extra={"note": f"Bearer {TOKEN}"})
    text = stream.getvalue()
    _assert_clean(text)
    assert email_token(EMAILS[0]) in text
    assert "ValueError" in text  # the exception is there, only scrubbed
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == 5
        assert lines[0]["level"] == "INFO"
        assert lines[0]["ts"].endswith("Z")
        assert "exc" in lines[3]
        assert "ValueError" in lines[3]["exc"]
        assert lines[2]["who"] == email_token(EMAILS[2])
    else:
        assert text.splitlines()[0].split()[1] == "INFO"


def test_configure_logging_registers_setting_secrets_and_picks_the_format(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("log_format: auto\nsalesforce: {enabled: false}\n", encoding="utf-8")
    env = {
        "SALESFORCE_CLIENT_SECRET": "odd secret value with spaces",
        "SYNC_WEBHOOK_URL": "https://hooks.example.com/services/T000/B000/XXXXSECRETPATH",
        "DATABASE_URL": "postgresql://svc:dbpass-1234@db.internal/adv",
    }
    settings = load_settings(cfg, env)
    stream = io.StringIO()  # not a terminal: JSON lines
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings, stream)
    try:
        logging.getLogger("tests.ops.any").warning(
            "posting to %s as %s using odd secret value with spaces; db dbpass-1234",
            "https://hooks.example.com/services/T000/B000/XXXXSECRETPATH",
            EMAILS[0],
        )
        again = configure_logging(settings, stream)  # replaces, never duplicates
        assert handler not in root.handlers
        assert again in root.handlers
        handler = again
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    out = stream.getvalue()
    record = json.loads(out.splitlines()[0])
    assert record["logger"] == "tests.ops.any"
    for secret in ("XXXXSECRETPATH", "odd secret value", "dbpass-1234", EMAILS[0]):
        assert secret not in out


def test_text_format_on_a_terminal(tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    cfg = tmp_path / "settings.yaml"
    cfg.write_text("log_format: auto\n", encoding="utf-8")
    settings = load_settings(cfg, {})
    stream = Tty()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings, stream)
    try:
        logging.getLogger("tests.ops.tty").info("hello %s", EMAILS[0])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = stream.getvalue().strip()
    assert not line.startswith("{")
    assert "tests.ops.tty: hello <email:" in line
