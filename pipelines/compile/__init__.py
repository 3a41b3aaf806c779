"""Compilation: sequence files in, SQL the tick runs out (SPEC 5).

- :mod:`.condition` — one analyst condition → safe DuckDB SQL (parse, allow-list, resolve,
  type-check), with what it reads;
- :mod:`.activity` — ``activity_count`` / ``last_activity_at``: checked, and compiled to
  generated ``contact`` columns the tick computes set-based;
- :mod:`.allowlist` — the node classes, functions and bare words a condition may hold;
- :mod:`.binding` — each compiled condition bound in a scratch DuckDB with the schema's
  real types (type mismatches and constants that cannot fit fail before any run);
- :mod:`.references` — a sequence's owner, users, exclusive_with and templates exist;
- :mod:`.sequence` — every condition of a sequence, and the ``CompiledSequence`` /
  ``Compilation`` (with what each phase reads) the tick and the preview consume.
"""
