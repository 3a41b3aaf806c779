"""Progress of long work (issue 11): a catch-up tick over many occurrences, a big ingest.

On a terminal, one line redrawn in place (``\\r``): ``label  [#####.....]  k/n  12.3s``. In
a log (stderr not a terminal: Dagster, cron, a pipe), quiet: nothing while it runs, one line
when it ends, and only when the work took long enough to be worth a line (``min_seconds``),
so the scheduler's logs are not flooded. The engine calls :meth:`Progress.step`; it never
prints when nothing asked for progress (``progress=None``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class Progress:
    """``with Progress("tick", total=n) as p: ... p.step()``."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        min_seconds: float = 2.0,
        interactive: bool | None = None,
    ) -> None:
        self.label, self.total, self.done = label, max(total, 0), 0
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.min_seconds = min_seconds
        self.started = time.monotonic()
        self._drawn = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        now = time.monotonic()
        if self.interactive and (now - self._drawn >= 0.1 or self.done == self.total):
            self._drawn = now
            self.stream.write("\r" + self.line(note).ljust(79))
            self.stream.flush()

    def line(self, note: str = "") -> str:
        """``label  [####......]  k/n  s`` (and the note of the latest step).

        >>> p = Progress("tick", 4, interactive=False)
        >>> p.done = 1
        >>> p.line().split("  ")[:3]
        ['tick', '[######..................]', '1/4']
        """
        filled = WIDTH * self.done // self.total if self.total else WIDTH
        bar = "#" * filled + "." * (WIDTH - filled)
        elapsed = time.monotonic() - self.started
        text = f"{self.label}  [{bar}]  {self.done}/{self.total}  {elapsed:.1f}s"
        return f"{text}  {note}" if note else text

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.interactive:
            self.stream.write("\r" + self.line().ljust(79) + "\n")
        elif elapsed >= self.min_seconds:
            self.stream.write(f"{self.label}: {self.done}/{self.total} in {elapsed:.1f}s\n")
        self.stream.flush()
