"""The tick (SPEC 6): every due occurrence of every sequence, set-based.

- :mod:`.run` — ``run_tick`` and ``preview_occurrence``: which occurrences, grouped by instant;
- :mod:`.pending` — the occurrences not processed yet (ledger ``occurrences``);
- :mod:`.state` — the incremental activity state and the run's per-run temp tables;
- :mod:`.phases` — one occurrence: exits → entries → steps → completion;
- :mod:`.report` — ``RunReport`` / ``OccurrenceResult``;
- :mod:`.occurrences` — schedules → local dates and instants (DST, weekends);
- :mod:`.enrollment` — manual enrol / unenrol requests;
- :mod:`.properties` — the derived contact properties; :mod:`.preview` — audience preview;
- :mod:`.why` — one contact's story in one sequence (``sequencer why``), re-evaluated.
"""
