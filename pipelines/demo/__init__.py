"""The demo (``make demo``): generated data, a simulated audience, a local SMTP sink, and a
runner that plays days through the CLI and Dagster. Not part of the engine; it may import
dagster.

- :mod:`.data` — the demo contacts/accounts/activities;
- :mod:`.recipients` — simulated recipients acting on the sink's emails through the real doors
  (:mod:`.doors`: the tracking server on uvicorn, pymap IMAP inboxes);
- :mod:`.smtp_sink` — a real SMTP server on 127.0.0.1 (also used by the tests);
- :mod:`.run` — ``python -m pipelines.demo.run``; :mod:`.play` — days through Dagster.
"""
