"""The advocacy policy: rules loaded from YAML, evaluated in bulk over features. Pure code.

Features in, results out, ``now`` given; nothing here knows HTTP, a CRM or the store.
"""
