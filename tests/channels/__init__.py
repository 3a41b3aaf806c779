"""Tests of pipelines/channels/."""
