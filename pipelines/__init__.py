"""Sequencer: an open-source sales-sequence engine built as a batch data system."""

from __future__ import annotations

__version__ = "0.1.0"
