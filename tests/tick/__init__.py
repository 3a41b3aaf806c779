"""Tests of pipelines/tick/."""
