"""``python -m sync_service``: the same as the ``sync-service`` command."""

from sync_service.cli import entrypoint

entrypoint()
