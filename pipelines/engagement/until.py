"""The return date an out-of-office states ("until 14 March 2026", "bis zum 14.03.2026"…),
for ``detail.until`` (SPEC 10). Pure functions.

A date counts only right after a phrase that announces it (until, back on, returning, bis,
jusqu'au, hasta el, tot en met, fino al, até, …), in English, German, French, Spanish, Dutch,
Italian or Portuguese; the quoted original below the reply is not read. A date without a year
is the next such date on or after the message's. No date found → None.

>>> read_until("Out of office", "I am away until 14 March 2026.", None)
'2026-03-14'
>>> read_until("Abwesenheitsnotiz", "Ich bin bis zum 14.03.2026 nicht im Büro.", None)
'2026-03-14'
>>> read_until("Out of office", "I'm travelling with limited access.", None)
"""

from __future__ import annotations

import datetime as dt
import re

MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan januar jänner janvier enero januari gennaio janeiro",
        "february feb februar février fevrier febrero februari febbraio fevereiro",
        "march mar märz maerz mars marzo maart março marco",
        "april apr avril abril aprile",
        "may mai mayo mei maggio maio",
        "june jun juni juin junio giugno junho",
        "july jul juli juillet julio luglio julho",
        "august aug août aout agosto augustus",
        "september sep sept septembre septiembre setiembre settembre setembro",
        "october oct oktober octobre octubre ottobre outubro",
        "november nov novembre noviembre novembro",
        "december dec dezember décembre decembre diciembre dicembre dezembro",
    ],
    start=1,
):
    MONTHS.update(dict.fromkeys(_names.split(), _number))

_MONTH = "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True))
_DAY = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th|er|º|\.)?"
_YEAR = r"(?P<y>(?:19|20)\d\d)"
DATE = re.compile(
    r"(?P<iso>(?P<iy>20\d\d)-(?P<im>[01]?\d)-(?P<id>[0-3]?\d))"
    r"|(?P<num>(?P<nd>[0-3]?\d)(?P<sep>[./])(?P<nm>[01]?\d)(?:(?P=sep)(?P<ny>(?:20)?\d\d))?)"
    rf"|(?P<dm>{_DAY}\s*(?:de\s+)?(?P<m>{_MONTH})\b\.?(?:,?\s*(?:de\s+)?{_YEAR})?)"
    rf"|(?P<md>(?P<m2>{_MONTH})\b\.?\s+(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>(?:19|20)\d\d))?)",
    re.IGNORECASE,
)
"""ISO dates, day-first numeric dates (14.03.2026, 14/03), "14 March 2026", "14 de marzo de
2026", "March 14, 2026"."""

ANNOUNCES = re.compile(
    r"\b(?:until|till|through|thru|back (?:in (?:the )?office )?on|back in the office|"
    r"return(?:ing)?(?: to the office)?(?: on)?|be back(?: on)?|available again(?: on)?|"
    r"bis(?: zum| zur| einschließlich| einschl\.)?|ab dem|zurück am|wieder (?:im büro )?am|"
    r"wieder erreichbar (?:ab|am)|jusqu['’]au|jusqu['’]à|de retour le|retour le|à partir du|"
    r"hasta el|hasta|regreso el|de vuelta el|volveré el|a partir del|tot en met|t/m|tot|"
    r"terug op|vanaf|weer aanwezig op|fino al|fino a|rientro il|di ritorno il|"
    r"a partire dal|até(?: o dia)?|retorno em|de volta em|a partir de)\b",
    re.IGNORECASE,
)
WINDOW = 40  # characters after the phrase where its date may start (weekday names fit)

QUOTE = re.compile(
    r"^(?:>|On .{4,120} wrote:|Am .{4,120} schrieb|Le .{4,120} a écrit|El .{4,120} escribió|"
    r"-{2,} ?(?:Original Message|Ursprüngliche Nachricht|Message d'origine)|"
    r"(?:From|Von|De|Da|Van|Sent|Gesendet):\s)",
    re.IGNORECASE | re.MULTILINE,
)


def read_until(subject: str, body: str, sent: dt.datetime | None) -> str | None:
    """The first date announced in the subject or the body above any quote, ISO; dates
    before the message's day (``sent``) are skipped (a parse gone wrong, or a quoted date)."""
    quote = QUOTE.search(body)
    text = f"{subject}\n{body[: quote.start()] if quote else body}"
    base = (sent or dt.datetime.now(dt.UTC).replace(tzinfo=None)).date()
    for phrase in ANNOUNCES.finditer(text):
        window = text[phrase.end() : phrase.end() + WINDOW]
        for found in DATE.finditer(window):
            day = to_date(found, base)
            if day is not None and (sent is None or day >= base - dt.timedelta(days=1)):
                return day.isoformat()
    return None


def to_date(found: re.Match, base: dt.date) -> dt.date | None:
    """A :data:`DATE` match as a date (``base`` gives a missing year); None if impossible.

    >>> to_date(DATE.search("March 14"), dt.date(2026, 12, 1))
    datetime.date(2027, 3, 14)
    """
    g = found.groupdict()
    if g["iso"]:
        y, m, d = int(g["iy"]), int(g["im"]), int(g["id"])
    elif g["num"]:
        d, m = int(g["nd"]), int(g["nm"])
        y = int(g["ny"]) if g["ny"] else None
        y = y + 2000 if y is not None and y < 100 else y
    elif g["dm"]:
        d, m, y = int(g["d"]), MONTHS[g["m"].lower()], int(g["y"]) if g["y"] else None
    else:
        d, m, y = int(g["d2"]), MONTHS[g["m2"].lower()], int(g["y2"]) if g["y2"] else None
    try:
        if y is not None:
            return dt.date(y, m, d)
        day = dt.date(base.year, m, d)
        return day if day >= base else dt.date(base.year + 1, m, d)
    except ValueError:
        return None
