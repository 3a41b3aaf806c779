"""Experiments (SPEC 11, issue 13): the enrolment's bucket.

Every enrolment gets ``enrollments.bucket`` (0–9999) once, when it is inserted
(``sql/tick/dml_insert_enrollments.sql``), from a stable hash of its sequence and contact:
the first 32 bits of ``md5(sequence || '|' || contact_id)`` modulo 10000 — portable SQL (md5
and a hex cast), not an engine's own ``hash()``, so any engine and :func:`bucket` agree, and
a replay or a rerun never changes it. Variants and holdouts read the bucket.

A step's variant (:func:`variant_of`): the variants in file order cover [0, total weight) with
their cumulative weights; the enrolment takes the one whose range holds ``bucket * total /
BUCKETS``. The tick computes it in SQL (``sql/tick/int_step_actions.sql``) from
:func:`thresholds`: ``bucket * total / BUCKETS < cumulative`` is ``bucket < ceil(BUCKETS *
cumulative / total)``, an integer, computed exactly (fractions, not floats).

A sequence's holdout (``holdout_percent: N``) is the buckets below ``N * 100``: such an
enrolment is inserted with ``status = 'holdout'`` and is never contacted (docs/decisions.md,
"Holdouts").
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

from pipelines.models import Sequence as SequenceFile
from pipelines.models import Variant

BUCKETS = 10_000


def bucket(sequence: str, contact_id: str) -> int:
    """The bucket the tick stores for (sequence, contact).

    >>> bucket("s", "c1")
    3044
    """
    digest = hashlib.md5(f"{sequence}|{contact_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def thresholds(variants: Sequence[Variant]) -> list[tuple[str, int]]:
    """(variant id, first bucket past its range) in file order, for the variants with a
    weight: a bucket b takes the first variant whose threshold is above b.

    >>> from pipelines.models import Variant as V
    >>> thresholds([V(id="a", weight=1), V(id="z", weight=0), V(id="b", weight=3)])
    [('a', 2500), ('b', 10000)]
    >>> thresholds([V(id="a", weight=1), V(id="b", weight=1), V(id="c", weight=1)])
    [('a', 3334), ('b', 6667), ('c', 10000)]
    """
    weights = [Fraction(v.weight) for v in variants]
    total, cumulative, out = sum(weights), Fraction(0), []
    for variant, weight in zip(variants, weights, strict=True):
        cumulative += weight
        if weight > 0:
            out.append((variant.id, math.ceil(BUCKETS * cumulative / total)))
    return out


def variant_of(bucket_: int, variants: Sequence[Variant]) -> str:
    """The variant an enrolment in ``bucket_`` gets (the SQL of the tick agrees).

    >>> from pipelines.models import Variant as V
    >>> [variant_of(b, [V(id="a", weight=1), V(id="b", weight=3)]) for b in (0, 2499, 2500)]
    ['a', 'a', 'b']
    """
    return next(v for v, limit in thresholds(variants) if bucket_ < limit)


def holdouts(sequences: Iterable[SequenceFile]) -> dict[str, int]:
    """The buckets held out per sequence, for the sequences that hold any out (the
    ``holdouts`` of ``sql/tick/dml_insert_enrollments.sql``)."""
    return {s.name: s.holdout_buckets for s in sequences if s.holdout_buckets}
