"""The experiments' statistics (pipelines/stats.py) on hand-checked tables (issue 13)."""

from __future__ import annotations

import math

import pytest

from pipelines.stats import compare, fisher, newcombe, wilson, z_test


def test_a_hand_checked_table():
    """A: 30 replies of 300 sends, B: 54 of 300. Pooled p = 84/600 = 0.14;
    se = sqrt(0.14 * 0.86 * (2/300)) = 0.028333; z = (0.18 - 0.10) / 0.028333 = 2.8235;
    two-sided p = erfc(2.8235 / sqrt 2) = 0.004747. Every expected count is >= 5: z-test."""
    c = compare(30, 300, 54, 300)
    assert (c.test, c.verdict, c.significant) == ("z", "B better", True)
    assert c.diff == pytest.approx(0.08)
    assert c.p_value == pytest.approx(0.004747, abs=1e-6)
    assert c.ci_low < 0.08 < c.ci_high and c.ci_low > 0  # the interval excludes 0


def test_wilson_and_newcombe_match_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 - 48/80 = 0.2000,
    # method 10: 0.0524 to 0.3339; Wilson for 81/263: 0.2553 to 0.3662 (his table I)
    assert [round(v, 4) for v in newcombe(48, 80, 56, 70)] == [0.0524, 0.3339]
    assert [round(v, 4) for v in wilson(81, 263)] == [0.2553, 0.3662]


def test_fisher_on_a_small_table():
    """[[1, 9], [6, 4]]: the hypergeometric probabilities with 7 successes in 20, 10 per row;
    the tables at most as likely as X_a = 1 are X_a in {0, 1, 6, 7}:
    (C(10,0)C(10,7) + C(10,1)C(10,6) + C(10,6)C(10,1) + C(10,7)C(10,0)) / C(20,7)."""
    expected = (120 + 10 * 210 + 210 * 10 + 120) / math.comb(20, 7)
    assert fisher(1, 10, 6, 10) == pytest.approx(expected)
    assert compare(1, 10, 6, 10, min_n=10).test == "fisher"


def test_no_verdict_before_the_fixed_sample_and_bonferroni():
    early = compare(3, 50, 15, 50)
    assert early.verdict.startswith("too few") and not early.significant
    assert early.p_value < 0.05  # a peek would have called it: the rule does not
    assert compare(10, 100, 20, 100, min_n=100).verdict == "B better"  # p = 0.0477
    assert compare(10, 100, 20, 100, min_n=100, comparisons=2).verdict == "no difference"
    assert z_test(10, 100, 20, 100) == pytest.approx(0.04767, abs=1e-5)


def test_degenerate_arms():
    assert compare(0, 0, 3, 10).verdict.startswith("too few")
    same = compare(0, 300, 0, 300)
    assert (same.p_value, same.verdict) == (1.0, "no difference")
