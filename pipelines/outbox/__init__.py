"""The send step (SPEC 6 "Sending"): an exactly-once outbox over the ``actions`` table.

- :mod:`.send` — ``send_due``: the phases in order, ``SendReport``;
- :mod:`.batch` — the set-based phases: expire, skip the unsendable, daily limits, the batch;
- :mod:`.compose` — an action → an email, an SMS or a task (reads only);
- :mod:`.transitions` — claim → send (with retries) → record, ``ActionStatus``;
- :mod:`.review` — the ``unknown`` actions and how an operator settles them; requeue ``held``;
- :mod:`.tasks` — the owners' task queue;
- :mod:`.reports` — read-only reports: actions grouped by status and reason, daily volume;
- :mod:`.secrets` — the secrets the sequences need to send (the Dagster pre-send check);
- :mod:`.rehearse` — one action composed as the send would, no transport (``preview --render``).
"""
