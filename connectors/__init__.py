"""Connectors to the CRMs: streams that read, and a writer that writes field changes.

A connector knows nothing of the store or of rules; see :mod:`connectors.base`.
"""
