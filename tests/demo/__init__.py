"""Tests of pipelines/demo/."""
