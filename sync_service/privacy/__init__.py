"""Privacy and governance: erase, export, retain no longer than needed, keep erased out.

``forget`` erases a person, ``export-subject`` shows what is held about one, retention purges
personal data no longer needed, and tombstones keep erased people out of later syncs.

Modules:

* :mod:`~sync_service.privacy.keys` — the tombstones' HMAC key and the normalised keys hashed.
* :mod:`~sync_service.privacy.personal` — which column of which table is personal data.
* :mod:`~sync_service.privacy.subject` — every row a person appears in, found by direct queries.
* :mod:`~sync_service.privacy.tombstones` — the keyed hashes, and the ingest's scrubber.
* :mod:`~sync_service.privacy.forget` — the erasure and its audit record.
* :mod:`~sync_service.privacy.export` — a subject access request as JSON.
* :mod:`~sync_service.privacy.retention` — purges after ``privacy.deleted_days`` and
  ``privacy.free_text_days``.
"""
