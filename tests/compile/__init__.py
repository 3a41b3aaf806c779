"""Tests of pipelines/compile/."""
