"""The advocate sync & rules service: connectors, store, rules and writeback wired together."""

__version__ = "0.1.0"
