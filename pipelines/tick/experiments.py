"""Experiments (SPEC 11, issue 13): the enrolment's bucket.

Every enrolment gets ``enrollments.bucket`` (0–9999) once, when it is inserted
(``sql/tick/dml_insert_enrollments.sql``), from a stable hash of its sequence and contact:
the first 32 bits of ``md5(sequence || '|' || contact_id)`` modulo 10000 — portable SQL (md5
and a hex cast), not an engine's own ``hash()``, so any engine and :func:`bucket` agree, and
a replay or a rerun never changes it. Variants and holdouts read the bucket.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(sequence: str, contact_id: str) -> int:
    """The bucket the tick stores for (sequence, contact).

    >>> bucket("s", "c1")
    3044
    """
    digest = hashlib.md5(f"{sequence}|{contact_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS
