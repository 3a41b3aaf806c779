"""Experiments (SPEC 11, issue 13): the enrolment's bucket.

Every enrolment gets ``enrollments.bucket`` (0–9999) once, when it is inserted
(``sql/tick/dml_insert_enrollments.sql``), from a stable hash of its sequence and contact:
the first 32 bits of ``md5(sequence || '|' || contact_id)`` modulo 10000 — portable SQL (md5
and a hex cast), not an engine's own ``hash()``, so any engine and :func:`bucket` agree, and
a replay or a rerun never changes it. Variants and holdouts read the bucket.

A sequence's holdout (``holdout_percent: N``) is the buckets below ``N * 100``: such an
enrolment is inserted with ``status = 'holdout'`` and is never contacted (docs/decisions.md,
"Holdouts").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pipelines.models import Sequence

BUCKETS = 10_000


def bucket(sequence: str, contact_id: str) -> int:
    """The bucket the tick stores for (sequence, contact).

    >>> bucket("s", "c1")
    3044
    """
    digest = hashlib.md5(f"{sequence}|{contact_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def holdouts(sequences: Iterable[Sequence]) -> dict[str, int]:
    """The buckets held out per sequence, for the sequences that hold any out (the
    ``holdouts`` of ``sql/tick/dml_insert_enrollments.sql``)."""
    return {s.name: s.holdout_buckets for s in sequences if s.holdout_buckets}
