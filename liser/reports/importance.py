"""Which searched knobs mattered: parameter importances from a search study's logged trials.

The trials are rebuilt as an in-memory Optuna study (``optuna.trial.create_trial``)
from what the parent runs logged (params and ``val_uar_mean``), so the numbers come
from MLflow alone, and Optuna's fANOVA evaluator (seeded) scores them. If Optuna cannot
(too few trials, one value per knob), the absolute Spearman correlation between each
knob and the objective is used instead; the table says which.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from liser.reports.runs import StudyData
from liser.reports.tables import Table

OBJECTIVE = "val_uar_mean"
FANOVA = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"
SPEARMAN = "absolute Spearman correlation with mean validation UAR (fallback: fANOVA was not possible)"
NOT_KNOBS = {"seed"}


def searched_params(trials: pd.DataFrame, params: list[str]) -> list[str]:
    """The knobs that took more than one value across the trials."""
    return [p for p in params if p in trials and p not in NOT_KNOBS and trials[p].dropna().astype(str).nunique() > 1]


def _distribution(values: pd.Series):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    v = values.dropna()
    if pd.api.types.is_bool_dtype(v) or v.map(lambda x: isinstance(x, (bool, np.bool_))).all():
        return CategoricalDistribution([False, True]), lambda x: bool(x)
    if pd.api.types.is_integer_dtype(v):
        return IntDistribution(int(v.min()), int(v.max())), int
    if pd.api.types.is_numeric_dtype(v):
        lo, hi = float(v.min()), float(v.max())
        return FloatDistribution(lo, hi, log=lo > 0 and hi / lo >= 10), float
    return CategoricalDistribution(sorted(v.astype(str).unique())), str


def _fanova(trials: pd.DataFrame, knobs: list[str]) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(trials[k]) for k in knobs}
    study = optuna.create_study(direction="maximize")
    for _, row in trials.iterrows():
        present = [k for k in knobs if not pd.isna(row[k])]
        study.add_trial(
            optuna.trial.create_trial(
                params={k: dists[k][1](row[k]) for k in present}, distributions={k: dists[k][0] for k in present}, value=float(row[OBJECTIVE])
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(v) for k, v in get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=True).items()}


def _spearman(trials: pd.DataFrame, knobs: list[str]) -> dict[str, float]:
    out = {}
    for k in knobs:
        x = trials[k]
        codes = x if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) else x.astype(str).astype("category").cat.codes
        rho = stats.spearmanr(codes, trials[OBJECTIVE]).statistic if len(trials) > 2 else math.nan
        out[k] = abs(float(rho)) if np.isfinite(rho) else 0.0
    return out


def param_importances(data: StudyData, study: str) -> Table:
    """Importance of each searched knob for the objective, fANOVA or (fallback) |Spearman ρ|."""
    trials = data.trials[(data.trials["study"] == study) & data.trials[OBJECTIVE].notna()]
    knobs = searched_params(trials, data.params)
    scores, method = {}, FANOVA
    if knobs:
        try:
            scores = _fanova(trials, knobs)
        except Exception:  # optuna refuses (e.g. too few trials) or is not installed
            scores, method = _spearman(trials, knobs), SPEARMAN
    tidy = pd.DataFrame({"study": study, "param": list(scores), "importance": list(scores.values()), "method": method})
    tidy = tidy.sort_values("importance", ascending=False, ignore_index=True)
    display = pd.DataFrame({"Parameter": tidy["param"], "Importance": tidy["importance"].map(lambda v: f"{v:.3f}")}).set_index("Parameter")
    return Table(f"importances-{study}", f"Parameter importances: {study}", tidy, display, f"Method: {method}; from {len(trials)} FINISHED trials.")
