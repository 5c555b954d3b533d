"""The shared language of the service: the canonical model and the one exception tree.

``connectors``, ``rules`` and ``sync_service`` all import from here; nothing here imports them.
"""
