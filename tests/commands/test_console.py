"""Progress bars: on a terminal only, one line per stream."""

from __future__ import annotations

import io

from sync_service.commands.console import StreamProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_one_line_per_stream_on_a_terminal():
    out = Tty()
    bars = StreamProgress(out)
    bars("salesforce.accounts", 2000)
    bars("salesforce.accounts", 500)
    bars("salesforce.contacts", 10)
    bars.close()
    text = out.getvalue()
    assert "salesforce.accounts 2,500" in text
    assert "salesforce.contacts 10" in text
    assert text.count("\n") == 2


def test_progress_is_silent_when_not_on_a_terminal():
    out = io.StringIO()
    bars = StreamProgress(out)
    bars("salesforce.accounts", 2000)
    bars.close()
    assert out.getvalue() == ""
