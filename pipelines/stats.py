"""Two-proportion comparisons for experiments (SPEC 11, issue 13): variants of a step (reply
and human-open rates) and a sequence's treated vs holdout contacts (lift). Pure functions,
standard library only.

- The test: a pooled two-proportion z-test, two-sided; when any expected cell count is below 5
  (small samples), Fisher's exact test (two-sided: the sum of the probabilities of every
  table at most as likely as the one observed) instead.
- The 95 % interval of the difference p_b - p_a: Newcombe's hybrid score interval (method 10,
  from the two Wilson intervals), which stays inside [-1, 1] and behaves at 0 and 1 where the
  Wald interval does not.
- The verdict against peeking: a fixed sample size. No verdict is given before each arm has
  ``min_n`` contacts (default :data:`MIN_N`); an analyst looking every day therefore sees "too
  few" until the sample is in, and then a single test at ALPHA (Bonferroni-corrected when one
  control is compared with several arms: ``comparisons``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
MIN_N = 200  # contacts per arm before a verdict (the fixed-sample rule)


@dataclass(frozen=True)
class Comparison:
    """B against A: rates, difference with its 95 % interval, the test's p-value, the verdict."""

    n_a: int
    x_a: int
    n_b: int
    x_b: int
    rate_a: float | None
    rate_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str  # z | fisher | none
    significant: bool
    verdict: str


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion x/n.

    >>> [round(v, 4) for v in wilson(10, 100)]
    [0.0552, 0.1744]
    """
    if n == 0:
        return 0.0, 1.0
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x_a: int, n_a: int, x_b: int, n_b: int) -> tuple[float, float]:
    """The 95 % interval of p_b - p_a (Newcombe's method 10; his 1998 paper's example,
    56/70 vs 48/80: 0.0524 to 0.3339).

    >>> [round(v, 4) for v in newcombe(48, 80, 56, 70)]
    [0.0524, 0.3339]
    """
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wilson(x_a, n_a)
    l_b, u_b = wilson(x_b, n_b)
    d = p_b - p_a
    low = d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    high = d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return low, high


def z_test(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test.

    >>> round(z_test(10, 100, 20, 100), 4)
    0.0477
    """
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = (x_b / n_b - x_a / n_a) / se
    return math.erfc(abs(z) / math.sqrt(2))


def fisher(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Two-sided p-value of Fisher's exact test on [[x_a, n_a - x_a], [x_b, n_b - x_b]].

    >>> round(fisher(1, 10, 6, 10), 4)
    0.0573
    """
    successes, total = x_a + x_b, n_a + n_b

    def prob(k: int) -> float:  # P(X_a = k) given the margins (hypergeometric)
        return math.comb(n_a, k) * math.comb(n_b, successes - k) / math.comb(total, successes)

    observed = prob(x_a)
    ks = range(max(0, successes - n_b), min(n_a, successes) + 1)
    return min(1.0, sum(p for k in ks if (p := prob(k)) <= observed * (1 + 1e-7)))


def compare(
    x_a: int, n_a: int, x_b: int, n_b: int, *, min_n: int = MIN_N, comparisons: int = 1,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:  # fmt: skip
    """B against A. The verdict: "too few" until both arms have ``min_n``; then, at
    ALPHA / ``comparisons``, "B better", "A better" or "no difference".

    >>> compare(20, 200, 25, 200).verdict
    'no difference'
    >>> compare(10, 100, 20, 100, min_n=100).verdict
    'B better'
    >>> compare(10, 100, 20, 100, min_n=100, comparisons=2).verdict  # 0.0477 > 0.025
    'no difference'
    >>> compare(20, 400, 45, 400).verdict
    'B better'
    >>> compare(2, 30, 9, 30).verdict
    'too few (30 and 30 of 200 each)'
    """
    if n_a == 0 or n_b == 0:
        return Comparison(n_a, x_a, n_b, x_b, None, None, None, None, None, None, "none",
                          False, f"too few ({n_a} and {n_b} of {min_n} each)")  # fmt: skip
    rate_a, rate_b = x_a / n_a, x_b / n_b
    low, high = newcombe(x_a, n_a, x_b, n_b)
    total = n_a + n_b
    expected = [n * s / total for n in (n_a, n_b) for s in (x_a + x_b, total - x_a - x_b)]
    small = min(expected) < 5
    p_value = fisher(x_a, n_a, x_b, n_b) if small else z_test(x_a, n_a, x_b, n_b)
    significant = p_value < ALPHA / comparisons
    a, b = names
    if min(n_a, n_b) < min_n:
        verdict = f"too few ({n_a} and {n_b} of {min_n} each)"
        significant = False
    elif not significant:
        verdict = "no difference"
    else:
        verdict = f"{b} better" if rate_b > rate_a else f"{a} better"
    return Comparison(n_a, x_a, n_b, x_b, rate_a, rate_b, rate_b - rate_a, low, high, p_value,
                      "fisher" if small else "z", significant, verdict)  # fmt: skip
