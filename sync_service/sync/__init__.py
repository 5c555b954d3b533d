"""Stage one of the cycle: streams into the store (ingest), identity links, read-ahead."""
