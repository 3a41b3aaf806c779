"""The tracking server's event spool (SPEC 10 door 1): activity rows appended to
``imports/events/*.jsonl`` and made durable before the server answers, then loaded exactly once.

Writing: one :class:`Spool` per server process owns its own file (``events-<start>-<pid>-<n>
.jsonl``; a new one past :data:`ROTATE_BYTES`), so two servers never interleave and a killed
server's half-written last line is never continued. Requests hand their row to a writer thread
and wait; the thread writes every row waiting, flushes and ``fsync``\\s once for all of them
(group commit) and then releases them: an acknowledged event is on disk.

Loading (:func:`load_spool`): each file from the byte offset loaded last time (table
``event_spool``) to its last newline; a line without its newline is an event whose request was
never answered, left for no one. Exactly once twice over: the offsets, and the events' own
``activity_id`` (random, 128 bits) that the insert-only merge never stores twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import queue
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

from pipelines.ingest.load import IngestResult, load_staged_activities, reset_staging
from pipelines.ingest.read import NO_DELIMITER

ROTATE_BYTES = 64 << 20
SPOOL_DIR = Path("imports") / "events"


def event_row(
    kind: str, payload: dict, at: dt.datetime, detail: dict[str, object]
) -> dict[str, object]:
    """The activity row (SPEC 3) of one tracking event, from its verified token payload."""
    return {
        "activity_id": f"srv:{uuid.uuid4().hex}",
        "contact_id": payload.get("c"),
        "type": kind,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "sequence": payload.get("s"),
        "step": payload.get("t"),
        "message_id": payload.get("m"),
        "detail": json.dumps({"source": "tracking", **detail}, separators=(",", ":")),
    }


class Spool:
    """Appends rows durably; :meth:`submit` returns a future done once the row is fsynced."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self._prefix = f"events-{stamp}-{os.getpid()}"
        self._n = 0
        self._file = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="spool", daemon=True)
        self._thread.start()
        self.written = 0
        # fault injection for the crash tests: a slow disk, so a kill lands between the write
        # of a batch and its answer (tests/engagement/test_serve.py)
        self._delay = float(os.environ.get("SEQUENCER_SPOOL_FSYNC_DELAY", "0") or 0)

    @property
    def path(self) -> Path | None:
        return Path(self._file.name) if self._file else None

    def submit(self, row: dict[str, object]) -> Future:
        done: Future = Future()
        line = (json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        self._queue.put((line, done))
        return done

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        if self._file:
            self._file.close()

    def _open(self) -> None:
        if self._file:
            self._file.close()
        self._n += 1
        name = self.directory / f"{self._prefix}-{self._n}.jsonl"
        self._file = name.open("ab", buffering=0)
        fd = os.open(self.directory, os.O_RDONLY)  # the new name itself must survive a crash
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            batch, stop = [], item is None
            if item is not None:
                batch.append(item)
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[bytes, Future]]) -> None:
        try:
            if self._file is None or self._file.tell() >= ROTATE_BYTES:
                self._open()
            self._file.write(b"".join(line for line, _ in batch))
            if self._delay:
                time.sleep(self._delay)
            os.fsync(self._file.fileno())
        except OSError as exc:
            for _, done in batch:
                done.set_exception(exc)
            return
        self.written += len(batch)
        for _, done in batch:
            done.set_result(None)


def spool_files(root: Path) -> list[Path]:
    return sorted((Path(root) / SPOOL_DIR).glob("*.jsonl"))


def load_spool(con, root: Path) -> list[IngestResult]:
    """Load what every spool file gained since the last load (complete lines only)."""
    results = []
    for path in spool_files(root):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        row = con.execute(
            "select loaded_bytes, loaded_lines from event_spool where file = $1", [name]
        ).fetchone()
        offset, lines = row or (0, 0)
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            continue
        chunk = chunk[:end]
        results.append(_load_chunk(con, path, name, chunk, offset, lines))
    return results


def _load_chunk(con, path: Path, name: str, chunk: bytes, offset: int, lines: int):
    digest = hashlib.sha256(f"{name}:{offset}:".encode() + chunk).hexdigest()
    reset_staging(con)
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as scratch:
        scratch.write(chunk)
        scratch.flush()
        con.execute(
            "create temp table ingest_raw as select __text, null::varchar as __raw from "
            "read_csv($path, columns = {'__text': 'VARCHAR'}, header = false, "
            "auto_detect = false, delim = $delim, quote = '', escape = '', "
            "strict_mode = false, max_line_size = 100000000)",
            {"path": scratch.name, "delim": NO_DELIMITER},
        )
    count = chunk.count(b"\n")

    def advance(con) -> None:  # the offset commits with the load (or not at all)
        con.execute(
            "insert or replace into event_spool (file, loaded_bytes, loaded_lines, loaded_at)"
            " values ($1, $2, $3, now()::timestamp)",
            [name, offset + len(chunk), lines + count],
        )

    return load_staged_activities(
        con, path, digest=digest, kind="events", first_line=lines + 1, within=advance
    )
