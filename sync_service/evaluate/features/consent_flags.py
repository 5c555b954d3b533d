"""Speed path: the ``consent_<type>`` features computed once per distinct consent value.

What it speeds up: :func:`consent_columns` (the plain path, below) slugs each
contact's consent multi-select with two regular expressions and then looks for each consent
type in it. A chunk holds few distinct multi-select values (a handful of combinations of seven
types) among 100,000 contacts, so the flags are computed on the distinct values and joined back
to the contacts: one hash join instead of two regex passes and a search per type over every
row. By how much: the client CPU of the features read at 200,000 contacts fell from ~1.7 s to
~1.0 s (``BENCHMARKS.md``, rules, issue 20 profile); on 100,000 values the columns alone take
0.01 CPU-s instead of 0.35.

Switch: ``SYNC_SPEED_PATHS_OFF=consent_distinct`` (see :mod:`canonical.speed_paths`), or
``enabled=False``. Reference twin: ``consent_columns`` on every row;
``tests/evaluate/features/test_consent_flags.py`` proves the two equal.
"""

from __future__ import annotations

import polars as pl

from canonical.speed_paths import speed_path_on

#: The column holding the contact's consent multi-select ('Case Study;Logo Use').
CONSENT_TYPES = "consent_types"


def consent_columns(consent_types: pl.Expr, features: list[str]) -> list[pl.Expr]:
    """``consent_<slug>`` columns from the consent multi-select ('Case Study;Logo Use').

    Each value is slugged as the feature names are (:func:`rules.catalogue.slug`), inside
    ';' fences, so one vectorised ``contains`` answers each feature. No value: FALSE.
    """
    slugged = consent_types.str.to_lowercase().str.replace_all(r"[^a-z0-9;]+", "_")
    fenced = pl.concat_str([pl.lit(";"), slugged, pl.lit(";")]).str.replace_all(r"_?;_?", ";")
    return [
        fenced.str.contains(f";{name.removeprefix('consent_')};", literal=True)
        .fill_null(False)
        .alias(name)
        for name in features
    ]


def with_consent_flags(
    frame: pl.DataFrame, features: list[str], *, enabled: bool | None = None
) -> pl.DataFrame:
    """``frame`` with a boolean column per ``consent_<type>`` feature (False without consent).

    Args:
        frame: contacts with a ``consent_types`` column; rows and their order are kept.
        features: the ``consent_<slug>`` feature names to add.
        enabled: use the speed path; None: as ``SYNC_SPEED_PATHS_OFF`` says.
    """
    if enabled is None:
        enabled = speed_path_on("consent_distinct")
    if not enabled:
        return frame.with_columns(consent_columns(pl.col(CONSENT_TYPES), features))
    distinct = frame.select(pl.col(CONSENT_TYPES).unique().drop_nulls())
    flags = distinct.with_columns(consent_columns(pl.col(CONSENT_TYPES), features))
    # A contact with no consent value matches no row of ``flags`` (nulls never join): False.
    return frame.join(flags, on=CONSENT_TYPES, how="left", maintain_order="left").with_columns(
        pl.col(features).fill_null(False)
    )
