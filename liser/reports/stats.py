"""The statistics the tables print: paired corrected t-tests over folds and relative changes.

Fold scores of two configurations share training data across folds, so a plain paired
t-test over folds is too confident. The Nadeau–Bengio corrected resampled t-test
(Nadeau & Bengio, "Inference for the Generalization Error", Machine Learning 52, 2003)
widens the variance by the test/train size ratio:

    d_j = a_j - b_j over the k shared (fold, seed) pairs
    t   = mean(d) / sqrt((1/k + n_test/n_train) * var(d, ddof=1)),   df = k - 1

and the p-value is two-sided from Student's t. With ``n_test/n_train = 0`` it is exactly
``scipy.stats.ttest_rel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

TEST_NAME = "Nadeau–Bengio corrected resampled t-test, two-sided, df = n−1"
PAIR_KEYS = ("fold", "seed")
SAME_DIFFERENCE = 1e-12  # differences closer than this count as equal (zero variance)


@dataclass(frozen=True)
class TTest:
    t: float
    p: float
    df: int
    n: int  # number of paired scores
    mean_diff: float
    ratio: float  # n_test / n_train used in the correction


def corrected_ttest(a, b, test_train_ratio: float) -> TTest:
    """Nadeau–Bengio test of paired scores ``a`` against ``b`` (same order, one pair per fold run).

    Gives ``t = p = nan`` when it is undefined: fewer than 2 pairs, every difference
    equal to within ``SAME_DIFFERENCE`` (zero variance: no spread to test against), or a
    ratio that is not a number.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    k = len(d)
    if k == 0:
        return TTest(math.nan, math.nan, 0, 0, math.nan, test_train_ratio)
    mean = float(np.mean(d))
    if k < 2 or not np.isfinite(test_train_ratio):
        return TTest(math.nan, math.nan, k - 1, k, mean, test_train_ratio)
    if np.ptp(d) <= SAME_DIFFERENCE:  # e.g. 0.7-0.6 vs 0.6-0.5: equal but for rounding
        return TTest(math.nan, math.nan, k - 1, k, mean, test_train_ratio)
    var = float(np.mean((d - mean) ** 2) * (k / (k - 1)))  # var(d, ddof=1), rounded as scipy rounds it
    if var == 0.0:
        return TTest(math.nan, math.nan, k - 1, k, mean, test_train_ratio)
    # var / k first, as scipy does, so a ratio of 0 reproduces ttest_rel bit for bit.
    t = mean / math.sqrt(var / k + var * test_train_ratio)
    p = float(2 * stats.t.sf(abs(t), k - 1))
    return TTest(float(t), p, k - 1, k, mean, test_train_ratio)


def paired_folds(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The fold runs ``a`` and ``b`` share, on (fold, seed): columns a, b, and both runs' n_train and n_test."""
    cols = [*PAIR_KEYS, metric, "n_train", "n_test"]
    both = a[cols].merge(b[cols], on=list(PAIR_KEYS), suffixes=("_a", "_b")).sort_values(list(PAIR_KEYS))
    return both.rename(columns={f"{metric}_a": "a", f"{metric}_b": "b"})


def compare_folds(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> TTest:
    """Corrected t-test of ``a`` against ``b`` over their shared (fold, seed) runs.

    n_test/n_train is the mean over every run of the pairs (both configurations), so
    the test is symmetric in a and b; nan when the counts were not logged.
    """
    pairs = paired_folds(a, b, metric)
    ratios = pd.concat([pairs["n_test_a"] / pairs["n_train_a"], pairs["n_test_b"] / pairs["n_train_b"]])
    ratio = float(ratios.mean()) if len(ratios) and ratios.notna().all() else math.nan
    return corrected_ttest(pairs["a"].to_numpy(), pairs["b"].to_numpy(), ratio)


def relative_change(a: float, b: float) -> float:
    """Change of ``a`` over the baseline ``b`` in percent, as the paper reports it: 100 (a − b) / b."""
    if b == 0 or not np.isfinite(b) or not np.isfinite(a):
        return math.nan
    return 100.0 * (a - b) / b
