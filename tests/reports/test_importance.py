"""Parameter importances of a search, from its logged trials: fANOVA, or |Spearman ρ| when Optuna cannot."""

import numpy as np
import pytest
from scipy import stats

from liser.reports import importance


def test_searched_params_are_the_knobs_that_varied(loaded):
    trials = loaded.trials[loaded.trials["study"] == "search-ravdess"]
    assert sorted(importance.searched_params(trials, loaded.params)) == ["confidence", "distill_loss", "lambda_sd", "lambda_vd"]


def test_fanova_importances(loaded):
    table = importance.param_importances(loaded, "search-ravdess")
    assert set(table.data["param"]) == {"confidence", "distill_loss", "lambda_sd", "lambda_vd"}
    assert set(table.data["method"]) == {importance.FANOVA} and "fANOVA" in table.note
    assert table.data["importance"].sum() == pytest.approx(1.0) and (table.data["importance"] >= 0).all()
    assert table.data["importance"].is_monotonic_decreasing
    again = importance.param_importances(loaded, "search-ravdess")  # seeded: the same numbers every time
    assert again.data["importance"].tolist() == table.data["importance"].tolist()


def test_spearman_fallback(fake_store, loaded, monkeypatch):
    def refuse(*_args):
        raise RuntimeError("optuna says no")

    monkeypatch.setattr(importance, "_fanova", refuse)
    table = importance.param_importances(loaded, "search-ravdess")
    assert set(table.data["method"]) == {importance.SPEARMAN} and "Spearman" in table.note
    raws = sorted(fake_store.finished("search-ravdess").values(), key=lambda r: r["trial"])
    objective = [np.mean([f["val_uar"] for f in r["folds"]]) for r in raws]
    got = table.data.set_index("param")["importance"]
    for knob in ("lambda_sd", "lambda_vd"):
        assert got[knob] == pytest.approx(abs(stats.spearmanr([r["knobs"][knob] for r in raws], objective).statistic))
    # Categorical knobs are ranked by their (sorted) category codes.
    codes = [{"ce": 0, "mae": 1}[r["knobs"]["distill_loss"]] for r in raws]
    assert got["distill_loss"] == pytest.approx(abs(stats.spearmanr(codes, objective).statistic))
