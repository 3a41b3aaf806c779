"""The bytes of a text import file as DuckDB reads them (SPEC 3, docs/decisions.md).

One pass over the file (in 1 MiB chunks, never per row) decides:

- UTF-8, with or without BOM: read as it is;
- UTF-16 with a BOM: decoded into a UTF-8 scratch copy (a note says so);
- anything else that is not valid UTF-8 (Latin-1, Windows-1252, UTF-16 without BOM): the
  file is rejected with the line of the first invalid byte; nothing is guessed;
- CRLF and bare LF mixed in one file: a scratch copy with CRLF turned into LF (DuckDB's CSV
  reader fails the whole file otherwise). Only ``\\r`` bytes go, so physical line numbers stay.

Parquet files are binary and pass through untouched.
"""

from __future__ import annotations

import codecs
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import IngestError, Location

CHUNK = 1 << 20
MIXED = "mixed CRLF and LF line endings: read with LF (line numbers kept)"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class NotDecodable(IngestError):
    """The file is not UTF-8 (nor UTF-16 with a BOM); ``line``/``raw`` locate the first bad byte."""

    def __init__(self, message: str, path: Path, line: int, raw: str) -> None:
        self.line, self.raw = line, raw
        super().__init__(message, Location(file=str(path)))


@dataclass
class Source:
    """What DuckDB reads for ``original``: the file itself or a scratch copy."""

    original: Path
    path: Path
    notes: list[str] = field(default_factory=list)
    scratch: tempfile.TemporaryDirectory | None = None

    def close(self) -> None:
        if self.scratch is not None:
            self.scratch.cleanup()


@dataclass
class Scan:
    """One pass over a file's bytes: its SHA-256, and what :func:`prepare` needs."""

    digest: str
    utf16: bool = False
    crlf: bool = False
    bare_lf: bool = False


def scan(path: Path) -> Scan:
    """Hash the file and check it is UTF-8 (raising :class:`NotDecodable` at the first bad
    byte) in one read; a UTF-16 file (BOM) and a Parquet file are only hashed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        head = f.read(4)
    if path.suffix.lower() == ".parquet" or head.startswith(UTF16_BOMS):
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return Scan(digest.hexdigest(), utf16=head.startswith(UTF16_BOMS))
    crlf, bare_lf = _check_utf8(path, digest)
    return Scan(digest.hexdigest(), crlf=crlf, bare_lf=bare_lf)


def prepare(path: Path, scanned: Scan | None = None) -> Source:
    """The file as UTF-8 with one kind of line ending (see the module docstring); ``scanned``:
    the file's :func:`scan`, when it was made (else the bytes are checked here)."""
    if path.suffix.lower() == ".parquet":
        return Source(path, path)
    if scanned is None:
        with path.open("rb") as f:
            head = f.read(4)
        utf16 = head.startswith(UTF16_BOMS)
        crlf, bare_lf = (False, False) if utf16 else _check_utf8(path)
    else:
        utf16, crlf, bare_lf = scanned.utf16, scanned.crlf, scanned.bare_lf
    if utf16:
        return _transcode_utf16(path)
    if crlf and bare_lf:
        source = _scratch(path)
        with path.open("rb") as src, source.path.open("wb") as dst:
            _copy_lf(src, dst)
        source.notes.append(MIXED)
        return source
    return Source(path, path)


def _check_utf8(path: Path, digest=None) -> tuple[bool, bool]:
    """Raise NotDecodable at the first invalid byte; return (has CRLF, has bare LF). Feeds
    the bytes to ``digest`` (a hashlib object) on the way."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    crlf = bare_lf = False
    offset, last = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if digest is not None:
                digest.update(chunk)
            buffered = len(decoder.getstate()[0])
            # an ASCII chunk with no sequence pending is valid UTF-8: isascii() is a fast scan,
            # decoding builds a str (most of this pass's time on a mostly-ASCII file)
            if buffered or not chunk.isascii():
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    _not_utf8(path, offset + exc.start - buffered)
            lfs = chunk.count(b"\n")
            pairs = chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            crlf = crlf or pairs > 0
            bare_lf = bare_lf or lfs > pairs
            offset, last = offset + len(chunk), chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        _not_utf8(path, offset - 1)
    return crlf, bare_lf


def _not_utf8(path: Path, at: int) -> None:
    """Locate byte ``at`` (line, the line's text with bad bytes escaped) and reject."""
    at = max(at, 0)
    line, start = 1, 0
    with path.open("rb") as f:
        done = 0
        while done < at and (chunk := f.read(min(CHUNK, at - done))):
            line += chunk.count(b"\n")
            nl = chunk.rfind(b"\n")
            start = done + nl + 1 if nl >= 0 else start
            done += len(chunk)
        f.seek(start)
        text = f.readline(100_000).rstrip(b"\r\n")
    byte = text[at - start : at - start + 1].hex() if at >= start else "??"
    hint = "UTF-16 without BOM?" if b"\x00" in text else "Latin-1 or Windows-1252?"
    raise NotDecodable(
        f"not UTF-8: byte 0x{byte} on line {line} ({hint}); save the file as UTF-8 "
        "(nothing of it was loaded)",
        path,
        line,
        text.decode("utf-8", errors="backslashreplace"),
    )


def _scratch(path: Path) -> Source:
    tmp = tempfile.TemporaryDirectory(prefix="sequencer-ingest-")
    return Source(path, Path(tmp.name) / path.name, scratch=tmp)


def _transcode_utf16(path: Path) -> Source:
    source = _scratch(path)
    try:
        with (
            path.open("r", encoding="utf-16", newline="") as src,
            source.path.open("w", encoding="utf-8", newline="") as dst,
        ):
            while text := src.read(CHUNK):
                dst.write(text)
    except UnicodeError as exc:
        source.close()
        raise IngestError(
            f"starts with a UTF-16 byte-order mark but does not decode as UTF-16 ({exc})",
            Location(file=str(path)),
        ) from None
    source.notes.append("decoded from UTF-16 (byte-order mark)")
    crlf, bare_lf = _check_utf8(source.path)
    if crlf and bare_lf:
        lf_path = source.path.with_name(source.path.name + ".lf")
        with source.path.open("rb") as src, lf_path.open("wb") as dst:
            _copy_lf(src, dst)
        lf_path.replace(source.path)
        source.notes.append(MIXED)
    return source


def _copy_lf(src, dst) -> None:
    """Copy with every CRLF turned into LF (a CR split across chunks included)."""
    carry = b""
    while chunk := src.read(CHUNK):
        chunk = carry + chunk
        carry = b"\r" if chunk.endswith(b"\r") else b""
        dst.write((chunk[:-1] if carry else chunk).replace(b"\r\n", b"\n"))
    dst.write(carry)
