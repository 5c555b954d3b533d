"""The local SQL store: canonical rows, service tables, bulk upserts and migrations."""
