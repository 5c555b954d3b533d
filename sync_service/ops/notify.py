"""Failure notifications to a Slack-compatible webhook (``{"text": ...}``).

The webhook URL is a secret (``SYNC_WEBHOOK_URL``): it is never logged, and an error posting to
it is reported by type only (a ``requests`` error's text carries the URL). Posting never raises:
a notification that cannot be sent must not turn a job's result into a crash.
"""

from __future__ import annotations

import logging
import socket

import requests
from pydantic import SecretStr

from canonical.redaction import redact

log = logging.getLogger(__name__)

#: Seconds to wait for the webhook; a slow chat service must not hold up the scheduler.
DEFAULT_TIMEOUT = 10.0


def notify(
    webhook_url: SecretStr | None,
    text: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> bool:
    """Post ``text`` (redacted) to the webhook; return True when it answered 2xx.

    Does nothing (returns False) when no webhook is configured.
    """
    if webhook_url is None:
        return False
    url = webhook_url.get_secret_value()
    if not url:
        return False
    payload = {"text": redact(text)[:3000]}
    try:
        poster = session or requests
        resp = poster.post(url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        log.warning(
            "webhook notification not sent (%s); check SYNC_WEBHOOK_URL", type(exc).__name__
        )
        return False
    except Exception as exc:  # never let a notification crash the job that failed
        log.warning("webhook notification not sent (%s)", type(exc).__name__)
        return False
    if not 200 <= resp.status_code < 300:
        log.warning("webhook answered HTTP %d; check SYNC_WEBHOOK_URL", resp.status_code)
        return False
    return True


def job_failed_text(job: str, status: str, error: str | None, run_id: int | None) -> str:
    """The one-message summary of a failed (or held) run, for people on call."""
    host = socket.gethostname()
    what = "failed" if status == "failed" else f"ended {status}"
    run = f" (run {run_id})" if run_id is not None else ""
    reason = error or "no error recorded"
    return (
        f":rotating_light: advocate-sync job '{job}' {what}{run} on {host}: {reason}. "
        "Committed work is kept and the next run resumes; `sync-service status` shows details."
    )


def rejected_edit_text(jobs: list[str], problems: list[str]) -> str:
    """The one message about a rejected mapping or rules edit (sent once per edit)."""
    host = socket.gethostname()
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f":warning: advocate-sync on {host}: a mapping or rules edit was rejected; the last "
        f"valid configuration keeps running ({', '.join(jobs)}). {len(problems)} problem(s): "
        f"{problems[0]}{more}. Fix the file, run `sync-service validate`; `sync-service status` "
        "lists every problem."
    )


def job_recovered_text(job: str, run_id: int | None) -> str:
    """The all-clear after a job that had failed (or was held) succeeds again."""
    run = f" (run {run_id})" if run_id is not None else ""
    host = socket.gethostname()
    return f":white_check_mark: advocate-sync job '{job}' succeeded again{run} on {host}."
