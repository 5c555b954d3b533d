"""Running unattended: scheduler, locks, runs, housekeeping, API usage, metrics, logs, health."""
