"""Engagement capture (SPEC 10): the doors that bring opens, clicks, unsubscribes, replies,
auto-replies, bounces and complaints back as ``activities``.

- :mod:`.server` — ``sequencer serve``: the tracking and one-click-unsubscribe HTTP app;
- :mod:`.spool` — the server's durable event files (``imports/events/*.jsonl``) and their load;
- :mod:`.esp` — SendGrid, Mailgun, SES (SNS) and Postmark event files, set-based;
- :mod:`.classify` — one email message → what it is (reply, auto-reply, bounce, complaint…),
  with :mod:`.headers` (the parts of a message it reads), :mod:`.reports` (DSNs, feedback
  reports) and :mod:`.until` (an out-of-office's return date);
- :mod:`.mailbox` — classified messages → matched to our sends → activities; .eml, mbox and
  Maildir files; :mod:`.inbox` — IMAP inboxes; :mod:`.commands` — ``sequencer mailbox
  poll|import``.

Every door stages activity records and loads them with
:func:`pipelines.ingest.load.load_staged_activities` (same checks, quarantine, insert-only
merge as an activities file).
"""
