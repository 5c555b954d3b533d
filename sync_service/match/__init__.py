"""Reference matching: the right eligible advocates for each open deal (issue 23).

* :mod:`~sync_service.match.config` -- ``config/matching.yaml``, validated with ``file:line``;
* :mod:`~sync_service.match.rank` -- the ranking, pure (candidates by group in, suggestions out);
* :mod:`~sync_service.match.candidates` -- the store's candidates, served a group at a time;
* :mod:`~sync_service.match.stage` -- the stage: reads the store, stores the suggestions and
  queues the Opportunity's ``Suggested_References__c`` text (only when it changed);
* :mod:`~sync_service.match.job` -- the stage as a job of the cycle (after the evaluation).
"""
