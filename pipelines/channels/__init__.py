"""Transports and rendering: what leaves the engine and how.

- :mod:`.message` — addresses, Message-IDs, the MIME message and its footer;
- :mod:`.tracking` — signed tokens, open pixel and click rewriting;
- :mod:`.smtp` — ``SmtpPool`` (one connection per mailbox) and ``SendError``;
- :mod:`.sms` — the SMS gateway client;
- :mod:`.render` — the sandboxed Jinja renderer for subjects, bodies and notes.
"""
