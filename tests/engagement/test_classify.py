"""``pipelines.engagement.classify`` on real-looking messages (tests/fixtures/mail/*.eml):
RFC 3464 and RFC 5965 examples, Gmail, Exchange and Postfix reports, out-of-office replies in
seven languages, genuine replies. Pure functions: bytes in, classifications out."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from pipelines.engagement.classify import Kind, classify, envelope, parse
from pipelines.engagement.until import read_until

MAIL = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
OURS = "<6ab9f1eb8f7d3388f4f9d586f66e99fd@acme.example>"
OURS2 = "<0b0d2f6a5c1e4e7f9a8b7c6d5e4f3a2b@acme.example>"

EXPECTED = {
    # file: [(kind, recipient, status, matched_message_id, until), ...] one per recipient
    "postfix_511_user_unknown.eml": [("bounce", "nobody@example.com", "5.1.1", OURS, None)],
    "gmail_550_511_no_such_user.eml": [("bounce", "gone.person@gmail.com", "5.1.1", OURS, None)],
    "exchange_ndr_5_1_10.eml": [("bounce", "former@contoso.com", "5.1.10", OURS, None)],
    "policy_block_5_7_1.eml": [("soft_bounce", "buyer@bigcorp.example", "5.7.1", OURS, None)],
    "delayed_4_2_2_mailbox_full.eml": [("soft_bounce", "full@example.org", "4.2.2", OURS, None)],
    "rfc3464_two_recipients.eml": [
        ("soft_bounce", "louis@larry.slip.umd.edu", "4.0.0", OURS2, None),
        ("delivered", "hiro@ux1.example", "2.0.0", OURS2, None),
    ],
    "delivered_2_0_0.eml": [("delivered", "ann@example.net", "2.0.0", OURS, None)],
    "arf_abuse_rfc5965.eml": [("complaint", "complainer@example.net", "abuse", OURS, None)],
    "arf_opt_out_headers_only.eml": [("complaint", "optout@isp.example", "opt-out", OURS, None)],
    "ooo_outlook_en.eml": [("auto_reply", "ann@example.com", None, OURS, "2026-03-16")],
    "ooo_gmail_vacation_iso.eml": [("auto_reply", "bo@example.com", None, OURS, "2026-04-01")],
    "ooo_german_encoded.eml": [("auto_reply", "juergen@example.de", None, OURS, "2026-03-14")],
    "ooo_french_base64.eml": [("auto_reply", "claire@example.fr", None, OURS, "2026-03-20")],
    "ooo_spanish.eml": [("auto_reply", "diego@example.es", None, OURS, "2026-03-14")],
    "ooo_dutch_no_year.eml": [("auto_reply", "sanne@example.nl", None, OURS, "2026-03-13")],
    "ooo_italian_html.eml": [("auto_reply", "marco@example.it", None, OURS, "2026-03-14")],
    "ooo_portuguese.eml": [("auto_reply", "joana@example.pt", None, OURS, "2026-03-14")],
    "ooo_no_date.eml": [("auto_reply", "ed@example.com", None, OURS, None)],
    "reply_genuine.eml": [("reply", "ann@example.com", None, OURS, None)],
    # In-Reply-To names a colleague's mail: ours is found among References (see below)
    "reply_quoting_our_mail.eml": [
        ("reply", "cy@example.com", None, "<reply-from-colleague@example.com>", None)
    ],
    # classify alone cannot know the sender is us: mailbox.py never counts it (test_mailbox)
    "from_us_bcc_copy.eml": [("reply", "alice@acme.example", None, None, None)],
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in MAIL.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classify_fixture(name):
    found = classify((MAIL / name).read_bytes())
    got = [(str(c.kind), c.recipient, c.status, c.matched_message_id, c.until) for c in found]
    assert got == EXPECTED[name]


def test_a_dsn_is_not_an_auto_reply_although_it_says_auto_submitted():
    raw = (MAIL / "postfix_511_user_unknown.eml").read_bytes()
    assert b"Auto-Submitted: auto-replied" in raw
    [c] = classify(raw)
    assert c.kind is Kind.BOUNCE and "User unknown" in c.diagnostic


def test_a_reply_lists_every_referenced_id_newest_first():
    [c] = classify((MAIL / "reply_quoting_our_mail.eml").read_bytes())
    assert c.candidates == ("<reply-from-colleague@example.com>", OURS, OURS2)


def test_the_quoted_original_is_neither_an_out_of_office_nor_a_return_date():
    """The quote says "until 31 March 2026" and "Out of office": still a plain reply."""
    [c] = classify((MAIL / "reply_quoting_our_mail.eml").read_bytes())
    assert c.kind is Kind.REPLY and c.until is None


def test_mime_encoded_subject_and_sender_are_decoded():
    env = envelope(parse((MAIL / "ooo_german_encoded.eml").read_bytes()))
    assert env.subject == "Abwesenheitsnotiz: Quick question"
    assert env.sender == "juergen@example.de"
    assert env.date == dt.datetime(2026, 3, 2, 15, 0)  # +0100 → UTC
    assert env.message_id == "<ooo-de-1@example.de>"


def dsn(action: str, status: str, diagnostic: str = "") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
        f"\r\nFinal-Recipient: rfc822; x@y.example\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m1@acme.example>\r\n"
        "\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    "action,status,diagnostic,kind",
    [
        ("failed", "5.1.1", "550 5.1.1 user unknown", "bounce"),
        ("failed", "5.1.2", "550 5.1.2 bad destination system", "bounce"),
        ("failed", "5.2.1", "550 5.2.1 mailbox disabled", "bounce"),
        ("failed", "5.5.0", "550 5.5.0 mailbox unavailable", "bounce"),
        ("failed", "5.7.1", "554 5.7.1 blocked by policy", "soft_bounce"),
        ("failed", "5.7.26", "550 5.7.26 unauthenticated mail", "soft_bounce"),
        ("failed", "5.2.2", "552 5.2.2 over quota", "soft_bounce"),
        ("failed", "5.3.4", "552 5.3.4 message too big", "soft_bounce"),
        ("failed", "5.0.0", "550 5.0.0 <x@y.example>... User unknown", "bounce"),
        ("failed", "5.0.0", "550 5.0.0 rejected: spam content", "soft_bounce"),
        ("failed", "4.4.7", "delivery time expired", "soft_bounce"),
        ("delayed", "4.4.1", "connection timed out", "soft_bounce"),
        ("delivered", "2.0.0", "250 ok", "delivered"),
        ("relayed", "2.0.0", "250 ok", "other"),
    ],
)
def test_dsn_action_and_status(action, status, diagnostic, kind):
    [c] = classify(dsn(action, status, diagnostic))
    assert (str(c.kind), c.status, c.recipient, c.matched_message_id) == (
        kind, status, "x@y.example", "<m1@acme.example>"
    )  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: on",
        "Precedence: auto_reply",
        "Precedence: junk",
        "Subject: Out of Office: Quick question",
        "Subject: AutoReply: Quick question",
        "Subject: Automatische Antwort: Quick question",
        "Subject: Absence: Quick question",
        "Subject: Fuera de la oficina",
        "Subject: Risposta automatica: ciao",
        "Subject: =?utf-8?Q?R=C3=A9ponse_automatique?=",
    ],
)
def test_auto_reply_signals(headers):
    raw = f"From: a@b.example\r\n{headers}\r\nIn-Reply-To: <m1@acme.example>\r\n\r\nHi\r\n"
    assert [str(c.kind) for c in classify(raw.encode())] == ["auto_reply"]


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no",
        "Precedence: list",
        "Subject: Re: office hours question",
        "Subject: Re: Absence management demo",  # a word of an OOO subject, not leading
        "Subject: RE: the absent-minded CFO",
    ],
)
def test_not_auto_reply_signals(headers):
    raw = f"From: a@b.example\r\n{headers}\r\n\r\nHi\r\n"
    assert [str(c.kind) for c in classify(raw.encode())] == ["reply"]


SENT = dt.datetime(2026, 3, 2, 9, 0)


@pytest.mark.parametrize(
    "body,until",
    [
        ("I am out of the office until 14 March 2026.", "2026-03-14"),
        ("Out until March 14, 2026.", "2026-03-14"),
        ("I'll be back on 2026-03-14.", "2026-03-14"),
        ("I am returning March 14.", "2026-03-14"),
        ("Back in the office on Monday 16th March.", "2026-03-16"),
        ("Ich bin bis zum 14.03.2026 nicht erreichbar.", "2026-03-14"),
        ("Ab dem 16. März 2026 bin ich wieder im Büro.", "2026-03-16"),
        ("Je suis absent jusqu'au 14 mars 2026.", "2026-03-14"),
        ("Estoy fuera hasta el 14 de marzo.", "2026-03-14"),
        ("Ik ben terug op 14 maart 2026.", "2026-03-14"),
        ("Sono assente fino al 14/03/2026.", "2026-03-14"),
        ("Estarei fora até 14 de março.", "2026-03-14"),
        ("Away until 5 January.", "2027-01-05"),  # no year: the next 5 January
        ("Away until 31 February 2026.", None),  # no such day
        ("I am away this week.", None),
        ("Our offer ran until 1 January 2020.", None),  # before the message: not a return
    ],
)
def test_until(body, until):
    assert read_until("Out of office", body, SENT) == until


def test_damaged_messages_never_raise():
    """300 fixtures with bytes flipped, cut and inserted (a fixed seed): each still gives a
    classification (the parser once raised IndexError on a broken address header)."""
    rng = random.Random(7)
    names = sorted(EXPECTED)
    for _ in range(300):
        raw = bytearray((MAIL / rng.choice(names)).read_bytes())
        for _ in range(rng.randint(1, 30)):
            pos = rng.randrange(len(raw))
            op = rng.random()
            if op < 0.4:
                raw[pos] = rng.randrange(256)
            elif op < 0.7:
                del raw[pos : pos + rng.randint(1, 50)]
            else:
                raw[pos:pos] = rng.choice([b"\r\n", b"--", b":", b";", b"<", b">", b"=?utf-8?B?"])
        found = classify(bytes(raw))
        assert found and all(isinstance(c.kind, Kind) for c in found)
        envelope(parse(bytes(raw)))
