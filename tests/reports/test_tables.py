"""Every table cell and curve point against numbers computed here from what the fixture logged."""

import math

import numpy as np
import pytest
from scipy import stats

from liser.reports import tables
from liser.reports.runs import load_studies

TABLE2 = ("no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl", "conf-vid-sp-dstl")
ABLATIONS = ("vid-distill-ce", "sp-distill-ce", "vid-two-stage-train", "sp-two-stage-train")


# --------------------------------------------------------------------- references, by hand
def values(raw: dict, metric: str) -> np.ndarray:
    return np.array([f[metric] for f in raw["folds"]], dtype=float)


def nb_test(a, b, ratio):
    """Nadeau–Bengio, written out: t = mean(d) / sqrt((1/k + ratio) var(d)), two-sided, df = k - 1."""
    d = np.asarray(a) - np.asarray(b)
    k = len(d)
    t = d.mean() / math.sqrt((1 / k + ratio) * d.var(ddof=1))
    return t, 2 * stats.t.sf(abs(t), k - 1)


def ratio_for(store, dataset: str) -> float:
    """n_test / n_train averaged over the three folds (both configurations have the same counts at full data)."""
    return float(np.mean(np.array(store.N_TEST[dataset]) / np.array(store.N_TRAIN[dataset])))


def pm(v: np.ndarray) -> str:
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def only(store, study, config, dataset=None) -> tuple[str, dict]:
    (rid, raw), = store.finished(study, config, dataset).items()
    return rid, raw


# --------------------------------------------------------------------- Table 2
def test_fixture_facts(fake_store):
    assert fake_store.TABLE2 == TABLE2 and fake_store.ABLATIONS == ABLATIONS


def test_table2_every_cell(fake_store, table2_data):
    table = tables.configuration_table(table2_data)
    tidy = table.data.set_index(["dataset", "config"])
    for dataset, study, configs in (("ravdess", "table2-ravdess", TABLE2 + ABLATIONS), ("cremad", "table2-cremad", TABLE2)):
        _, base = only(fake_store, study, "no-dstl")
        for config in configs:
            rid, raw = only(fake_store, study, config)
            row = tidy.loc[(dataset, config)]
            assert row["run_id"] == rid and row["n_folds"] == 3
            for metric, short, head in (("test_uar", "uar", "UAR"), ("test_war", "war", "WAR")):
                a, b = values(raw, metric), values(base, metric)
                assert row[f"{metric}_mean"] == pytest.approx(a.mean(), abs=1e-12)
                assert row[f"{metric}_std"] == pytest.approx(a.std(ddof=1), abs=1e-12)
                cell = table.display.loc[config, (dataset, head)]
                if config == "no-dstl":
                    assert math.isnan(row[f"{short}_p"]) and cell == pm(a)
                    continue
                change = 100 * (a.mean() - b.mean()) / b.mean()
                t, p = nb_test(a, b, ratio_for(fake_store, dataset))
                assert row[f"{short}_change_pct"] == pytest.approx(change, rel=1e-9)
                assert row[f"{short}_t"] == pytest.approx(t, rel=1e-9) and row[f"{short}_p"] == pytest.approx(p, rel=1e-9)
                assert row["n_paired"] == 3 and row["ratio"] == pytest.approx(ratio_for(fake_store, dataset))
                assert cell == f"{pm(a)} ({change:+.2f} %, {p_text(p)})"
            assert table.display.loc[config, (dataset, "n")] == "3"


def test_table2_layout_follows_the_paper(table2_data):
    table = tables.configuration_table(table2_data)
    assert table.display.index.tolist() == [*TABLE2, "vid-distill-ce", "sp-distill-ce", "vid-two-stage-train", "sp-two-stage-train"]
    assert list(dict.fromkeys(table.display.columns.get_level_values(0))) == ["ravdess", "cremad"]
    assert table.display.loc["vid-distill-ce", ("cremad", "UAR")] == "—"  # not run on cremad


def test_table2_ignores_failed_running_and_deleted_runs(fake_store, table2_data):
    table = tables.configuration_table(table2_data).data.set_index(["dataset", "config"])
    assert table.loc[("ravdess", "vid-dstl"), "run_id"] != fake_store.ignored["failed_trial"]
    assert table.loc[("ravdess", "sp-dstl"), "run_id"] != fake_store.ignored["running_trial"]
    _, base = only(fake_store, "table2-ravdess", "no-dstl")
    assert table.loc[("ravdess", "no-dstl"), "test_uar_mean"] == pytest.approx(values(base, "test_uar").mean())


def test_table2_picks_the_validation_best_trial_at_full_data(fake_store):
    data = load_studies(fake_store.uri, ["table2-ravdess", "lambda-grid", "table2-cremad", "fraction-cremad"])
    tidy = tables.configuration_table(data).data.set_index(["dataset", "config"])
    for dataset, config in (("ravdess", "vid-sp-dstl"), ("cremad", "no-dstl"), ("cremad", "vid-sp-dstl")):
        candidates = {rid: values(r, "val_uar").mean() for rid, r in fake_store.finished(config=config, dataset=dataset).items()
                      if r["knobs"].get("labeled_fraction", 1.0) == 1.0 and r["study"] in data.names}
        assert len(candidates) >= 2
        assert tidy.loc[(dataset, config), "run_id"] == max(candidates, key=candidates.get)


# --------------------------------------------------------------------- Table 3
def test_table3_every_cell(fake_store, table2_data):
    table = tables.ablation_table(table2_data)
    assert list(dict.fromkeys(table.display.columns.get_level_values(0))) == ["Video", "Speech"]  # no "Both" data
    assert table.display.index.tolist() == ["vid-dstl / sp-dstl", "distill-ce", "two-stage-train"]
    for column, configs in (("Video", ("vid-dstl", "vid-distill-ce", "vid-two-stage-train")), ("Speech", ("sp-dstl", "sp-distill-ce", "sp-two-stage-train"))):
        _, base = only(fake_store, "table2-ravdess", configs[0])
        for row, config in zip(("vid-dstl / sp-dstl", "distill-ce", "two-stage-train"), configs):
            _, raw = only(fake_store, "table2-ravdess", config)
            tidy = table.data[(table.data["column"] == column) & (table.data["row"] == row)].iloc[0]
            assert tidy["config"] == config
            for metric, short, head in (("test_uar", "uar", "UAR"), ("test_war", "war", "WAR")):
                a, b = values(raw, metric), values(base, metric)
                cell = table.display.loc[row, (column, head)]
                if config == configs[0]:
                    assert cell == pm(a) and tidy["baseline"] == ""
                    continue
                change = 100 * (a.mean() - b.mean()) / b.mean()
                t, p = nb_test(a, b, ratio_for(fake_store, "ravdess"))
                assert tidy["baseline"] == configs[0]
                assert tidy[f"{short}_change_pct"] == pytest.approx(change, rel=1e-9) and tidy[f"{short}_p"] == pytest.approx(p, rel=1e-9)
                assert cell == f"{pm(a)} ({change:+.2f} %, {p_text(p)})"


def test_table3_only_with_ablations(fake_store):
    data = load_studies(fake_store.uri, ["table2-cremad"])
    assert not tables.has_ablations(data) and tables.ablation_table(data) is None


# --------------------------------------------------------------------- Figure 2
def test_fraction_curve_every_point(fake_store):
    data = load_studies(fake_store.uri, ["fraction-cremad"])
    curve = tables.fraction_curve(data).data
    assert len(curve) == 6
    full = next(r for r in fake_store.finished("fraction-cremad", "no-dstl").values() if r["knobs"]["labeled_fraction"] == 1.0)
    for raw in fake_store.finished("fraction-cremad").values():
        fraction = raw["knobs"]["labeled_fraction"]
        point = curve[(curve["config"] == raw["config"]) & (curve["labeled_fraction"] == fraction)].iloc[0]
        for metric in ("test_uar", "test_war"):
            v = values(raw, metric)
            assert [point[f"{metric}_{s}"] for s in ("mean", "std", "min", "max")] == pytest.approx([v.mean(), v.std(ddof=1), v.min(), v.max()], abs=1e-12)
        assert point["n_folds"] == 3
        assert point["no_dstl_full_uar"] == pytest.approx(values(full, "test_uar").mean())
        assert point["no_dstl_full_war"] == pytest.approx(values(full, "test_war").mean())
    assert curve["config"].tolist() == ["no-dstl"] * 3 + ["vid-sp-dstl"] * 3
    assert curve["labeled_fraction"].tolist() == [0.25, 0.5, 1.0] * 2


def test_fraction_curve_keeps_only_configurations_run_on_fractions(fake_store):
    data = load_studies(fake_store.uri, ["table2-cremad", "fraction-cremad"])
    assert tables.fraction_values(data) == [0.25, 0.5, 1.0]
    curve = tables.fraction_curve(data).data
    assert set(curve["config"]) == {"no-dstl", "vid-sp-dstl"}
    # Two trials at fraction 1 per configuration now: each point is the validation-best one.
    for config in ("no-dstl", "vid-sp-dstl"):
        candidates = {rid: values(r, "val_uar").mean() for rid, r in fake_store.finished(config=config, dataset="cremad").items()
                      if r["knobs"].get("labeled_fraction", 1.0) == 1.0}
        point = curve[(curve["config"] == config) & (curve["labeled_fraction"] == 1.0)].iloc[0]
        assert point["run_id"] == max(candidates, key=candidates.get)


# --------------------------------------------------------------------- confusion
def test_confusion_matrices_summed_over_folds(fake_store, table2_data):
    table = tables.confusion_matrices(table2_data)
    for study, dataset, classes in (("table2-ravdess", "ravdess", ["neutral", "happy", "sad"]), ("table2-cremad", "cremad", ["angry", "disgust", "fearful", "happy"])):
        for config in TABLE2:
            _, raw = only(fake_store, study, config)
            expected = np.sum([f["confusion"] for f in raw["folds"]], axis=0)
            matrix = tables.confusion_matrix(table, dataset, config)
            assert list(matrix.index) == classes and list(matrix.columns) == classes
            assert matrix.to_numpy().tolist() == expected.tolist()  # the deleted/running/failed no-dstl folds (99s) are not in
            assert table.display.loc[(dataset, config, classes[0]), classes[1]] == str(expected[0, 1])
    assert set(table.data["n_folds"]) == {3}
