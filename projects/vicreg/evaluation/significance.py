"""Paired significance tests for comparing two backbones.

* :func:`mcnemar`: exact McNemar test on the same kNN queries classified by
  two backbones (McNemar, Psychometrika 1947): only the discordant queries
  count; under "no difference" each is equally likely to favour either.
* :func:`paired_t`: Student's paired t-test over seeds (one difference per
  seed, both runs of a seed sharing data order and head initialisation).
"""
import math
from typing import Dict, Sequence


def mcnemar(correct_a: Sequence[bool],
            correct_b: Sequence[bool]) -> Dict[str, float]:
    """Exact two-sided McNemar test of ``a`` vs ``b`` on paired outcomes.

    Returns ``a_only`` / ``b_only`` (queries only one backbone classifies
    correctly), ``n`` (queries), ``diff`` (accuracy of a minus b) and
    ``p``.
    """
    if len(correct_a) != len(correct_b) or not len(correct_a):
        raise ValueError('McNemar: need the same, non-empty query set for '
                         f'both ({len(correct_a)} vs {len(correct_b)})')
    a_only = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    b_only = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    n = a_only + b_only
    # P(X <= min(b, c)) for X ~ Binomial(n, 1/2), doubled
    tail = sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1))
    p = min(1.0, 2 * tail / 2**n) if n else 1.0
    return dict(a_only=a_only, b_only=b_only, n=len(correct_a),
                diff=(a_only - b_only) / len(correct_a), p=p)


def paired_t(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
    """Paired t-test of ``a - b`` over seeds (two-sided).

    Returns the mean and standard deviation of the differences, ``t`` and
    ``p`` (``nan`` with fewer than two seeds).
    """
    if len(a) != len(b):
        raise ValueError(f'paired t-test: {len(a)} vs {len(b)} values')
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    nan = float('nan')
    if n < 2:
        return dict(mean=d[0] if d else nan, std=nan, t=nan, p=nan, n=n)
    mean = sum(d) / n
    std = math.sqrt(sum((x - mean)**2 for x in d) / (n - 1))
    if std == 0:
        return dict(mean=mean, std=0.0, t=math.copysign(math.inf, mean)
                    if mean else nan, p=0.0 if mean else 1.0, n=n)
    from scipy import stats
    t = mean / (std / math.sqrt(n))
    return dict(mean=mean, std=std, t=t,
                p=float(2 * stats.t.sf(abs(t), n - 1)), n=n)
