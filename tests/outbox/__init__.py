"""Tests of pipelines/outbox/."""
