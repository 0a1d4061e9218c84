"""The Nadeau–Bengio corrected resampled t-test and the relative change, against references."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from liser.reports.stats import compare_folds, corrected_ttest, paired_folds, relative_change


@pytest.mark.parametrize("k", [2, 3, 5, 10, 25])
def test_ratio_zero_is_scipy_ttest_rel_exactly(k):
    rng = np.random.default_rng(k)
    a = rng.uniform(0.4, 0.7, k)
    b = a + rng.normal(0.01, 0.02, k)
    ref = stats.ttest_rel(a, b)
    got = corrected_ttest(a, b, 0.0)
    assert got.t == ref.statistic and got.p == ref.pvalue
    assert (got.df, got.n) == (k - 1, k)


def test_ratio_matches_the_formula_by_hand():
    a = [0.61, 0.58, 0.66, 0.60, 0.63]
    b = [0.55, 0.57, 0.59, 0.56, 0.60]
    # d = 0.06, 0.01, 0.07, 0.04, 0.03: mean 0.042, squared deviations sum to 0.00228, var = 0.00057
    t = 0.042 / math.sqrt((1 / 5 + 0.25) * 0.00057)
    got = corrected_ttest(a, b, 0.25)
    assert got.t == pytest.approx(t, rel=1e-9)
    assert got.p == pytest.approx(2 * stats.t.sf(t, 4), rel=1e-9)
    assert got.mean_diff == pytest.approx(0.042)
    assert abs(got.t) < abs(stats.ttest_rel(a, b).statistic)  # the correction only widens


def test_known_case_closed_form():
    # d = 1, 2, 3: mean 2, var 1; t = 2 / sqrt(1/3 + 1/4) = sqrt(48/7). With df = 2 Student's t has
    # a closed-form cdf, F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - sqrt(48/62).
    got = corrected_ttest([2, 3, 4], [1, 1, 1], 0.25)
    assert got.t == pytest.approx(math.sqrt(48 / 7), rel=1e-12)
    assert got.p == pytest.approx(1 - math.sqrt(24 / 31), rel=1e-9)
    assert got.df == 2


def test_symmetric_in_a_and_b():
    a, b = [0.61, 0.58, 0.66], [0.55, 0.57, 0.62]
    ab, ba = corrected_ttest(a, b, 0.3), corrected_ttest(b, a, 0.3)
    assert ab.t == pytest.approx(-ba.t) and ab.p == pytest.approx(ba.p)


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.5], [0.4]),  # one pair: no variance to estimate
        ([0.7, 0.6, 0.5], [0.6, 0.5, 0.4]),  # every difference 0.1 (up to rounding): zero variance
        ([0.5, 0.5], [0.5, 0.5]),  # no difference at all
    ],
)
def test_undefined_cases_give_nan(a, b):
    got = corrected_ttest(a, b, 0.2)
    assert math.isnan(got.p) and math.isnan(got.t)
    assert got.n == len(a)


def test_empty_and_unknown_ratio_give_nan():
    assert math.isnan(corrected_ttest([], [], 0.2).p)
    assert math.isnan(corrected_ttest([0.5, 0.6, 0.4], [0.4, 0.4, 0.45], math.nan).p)


def folds(rows):
    return pd.DataFrame(rows, columns=["fold", "seed", "test_uar", "n_train", "n_test"])


def test_compare_folds_pairs_on_fold_and_seed():
    a = folds([(2, 0, 0.60, 100, 30), (0, 0, 0.55, 120, 20), (1, 0, 0.58, 110, 25), (1, 1, 0.59, 110, 25)])
    b = folds([(1, 0, 0.50, 110, 25), (2, 0, 0.56, 100, 30), (3, 0, 0.40, 90, 40), (1, 1, 0.52, 110, 25)])
    pairs = paired_folds(a, b, "test_uar")
    assert list(zip(pairs["fold"], pairs["seed"])) == [(1, 0), (1, 1), (2, 0)]
    got = compare_folds(a, b, "test_uar")
    ratio = np.mean([25 / 110, 25 / 110, 30 / 100] * 2)
    d = np.array([0.58 - 0.50, 0.59 - 0.52, 0.60 - 0.56])
    t = d.mean() / math.sqrt((1 / 3 + ratio) * d.var(ddof=1))
    assert got.n == 3 and got.ratio == pytest.approx(ratio)
    assert got.t == pytest.approx(t, rel=1e-9) and got.p == pytest.approx(2 * stats.t.sf(abs(t), 2), rel=1e-9)


def test_relative_change_reproduces_the_papers_percentages():
    # Table 2, RAVDESS UAR against no-dstl (0.517): the text's 3.29 %, 5.42 %, 7.54 %, 15.09 %.
    assert [round(relative_change(x, 0.517), 2) for x in (0.534, 0.545, 0.556, 0.595)] == [3.29, 5.42, 7.54, 15.09]
    assert relative_change(0.5, 0.5) == 0.0
    assert math.isnan(relative_change(0.5, 0.0)) and math.isnan(relative_change(math.nan, 0.5))
