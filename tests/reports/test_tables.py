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


@pytest.fixture(scope="module")
def table2_data(fake_store):
    return load_studies(fake_store.uri, ["table2-ravdess", "table2-cremad"])


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


# --------------------------------------------------------------------- λ grid
def test_lambda_grid_cells_and_choice(fake_store):
    data = load_studies(fake_store.uri, ["lambda-grid"])
    assert tables.lambda_groups(data) == [("lambda-grid", "ravdess", "vid-sp-dstl")]
    grid = tables.lambda_grid(data).data
    assert len(grid) == 6
    expected = {}
    for raw in fake_store.finished("lambda-grid").values():
        cell = (raw["knobs"]["lambda_sd"], raw["knobs"]["lambda_vd"])
        expected[cell] = (values(raw, "val_uar").mean(), values(raw, "test_uar").mean())
        row = grid[(grid["lambda_sd"] == cell[0]) & (grid["lambda_vd"] == cell[1])].iloc[0]
        assert row["val_uar_mean"] == pytest.approx(expected[cell][0], abs=1e-12)
        assert row["val_uar_std"] == pytest.approx(values(raw, "val_uar").std(ddof=1), abs=1e-12)
        assert row["test_uar_mean"] == pytest.approx(expected[cell][1], abs=1e-12)
        assert row["n_trials"] == 1 and row["n_folds"] == 3
    best = max(expected, key=lambda c: expected[c][0])
    chosen = grid[grid["chosen"]]
    assert len(chosen) == 1 and best == (1.0, 5.0)
    assert (chosen["lambda_sd"].iloc[0], chosen["lambda_vd"].iloc[0]) == best
    assert chosen["test_uar_mean"].iloc[0] == pytest.approx(expected[best][1])


def test_no_lambda_grid_for_one_cell_per_configuration(table2_data):
    assert tables.lambda_groups(table2_data) == []


# --------------------------------------------------------------------- searches
def test_search_detection(loaded):
    assert tables.is_search(loaded, "search-ravdess")
    assert not tables.is_search(loaded, "lambda-grid") and not tables.is_search(loaded, "table2-ravdess")


def test_optimisation_history(fake_store, loaded):
    history = tables.optimisation_history(loaded, "search-ravdess").data
    raws = sorted(fake_store.finished("search-ravdess").values(), key=lambda r: r["trial"])
    val = [values(r, "val_uar").mean() for r in raws]
    assert history["trial"].tolist() == list(range(8))  # the KILLED trial 8 is not there
    assert history["val_uar_mean"].tolist() == pytest.approx(val)
    assert history["best_so_far"].tolist() == pytest.approx(np.maximum.accumulate(val).tolist())


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


# --------------------------------------------------------------------- other methods' knob grids
def by_cell(store, study: str, knobs: tuple[str, ...]) -> dict:
    """Per cell of ``knobs``: every fold's (val UAR, test UAR) of the cell's trials, pooled."""
    cells = {}
    for raw in store.finished(study).values():
        if not all(k in raw["knobs"] for k in knobs):
            continue  # the baseline (cnn6) has no such knobs
        cell = tuple(float(raw["knobs"][k]) for k in knobs)
        val, test = cells.get(cell, (np.array([]), np.array([])))
        cells[cell] = (np.concatenate([val, values(raw, "val_uar")]), np.concatenate([test, values(raw, "test_uar")]))
    return cells


def check_cells(grid, cells, knobs):
    assert len(grid) == len(cells)
    for cell, (val, test) in cells.items():
        row = grid[np.logical_and.reduce([grid[k] == v for k, v in zip(knobs, cell)])].iloc[0]
        assert row["val_uar_mean"] == pytest.approx(val.mean(), abs=1e-12)
        assert row["val_uar_std"] == pytest.approx(val.std(ddof=1), abs=1e-12)
        assert row["test_uar_mean"] == pytest.approx(test.mean(), abs=1e-12) and row["n_folds"] == len(val)
    best = max(cells, key=lambda c: cells[c][0].mean())
    chosen = grid[grid["chosen"]]
    assert len(chosen) == 1 and tuple(chosen[list(knobs)].iloc[0]) == best
    return best


def test_nsl_grid_cells_and_choice(methods_store):
    data = load_studies(methods_store.uri, ["nsl-grid"])
    assert tables.knob_groups(data) == [tables.KnobGroup("nsl-grid", "ravdess", "nsl", "nsl", ("nsl_neighbors", "nsl_alpha"))]
    assert tables.lambda_groups(data) == []  # cnn6 ran once
    table = tables.knob_grid(data, "nsl")
    assert (table.name, table.title) == ("nsl-grid", "NSL grid (n × α): validation choice")
    assert list(table.data.columns[:5]) == ["study", "dataset", "config", "nsl_neighbors", "nsl_alpha"]
    cells = by_cell(methods_store, "nsl-grid", ("nsl_neighbors", "nsl_alpha"))
    assert len(cells) == 4 and set(table.data["n_trials"]) == {1}
    assert check_cells(table.data, cells, ("nsl_neighbors", "nsl_alpha")) == (6.0, 0.1)
    assert table.display.index.names[3:] == ["neighbours", "α"]
    assert table.display.loc[("nsl-grid", "ravdess", "nsl", "6", "0.1"), "chosen"] == "chosen"


def test_emodistill_temperature_sweep_is_one_axis(methods_store):
    data = load_studies(methods_store.uri, ["emodistill-tau"])
    (group,) = tables.knob_groups(data)
    assert (group.method, group.knobs) == ("emodistill", ("tau_prosodic",))
    table = tables.knob_grid(data, "emodistill")
    assert table.name == "emodistill-grid" and "tau_linguistic" not in table.data and "alpha" not in table.data
    cells = by_cell(methods_store, "emodistill-tau", ("tau_prosodic",))
    assert check_cells(table.data, cells, ("tau_prosodic",)) == (0.5,)
    assert table.data["tau_prosodic"].tolist() == [0.1, 0.5, 2.0]


def test_emodistill_three_knobs_keep_the_two_with_most_values(methods_store):
    data = load_studies(methods_store.uri, ["emodistill-mixed", "emodistill-tau"])
    groups = {g.study: g.knobs for g in tables.knob_groups(data)}
    # τ_P has 3 values; α and β 2 each, α first on the tie
    assert groups == {"emodistill-mixed": ("alpha", "tau_prosodic"), "emodistill-tau": ("tau_prosodic",)}
    table = tables.knob_grid(data, "emodistill")
    assert "beta" not in table.data
    mixed = table.data[table.data["study"] == "emodistill-mixed"]
    cells = by_cell(methods_store, "emodistill-mixed", ("alpha", "tau_prosodic"))
    check_cells(mixed, cells, ("alpha", "tau_prosodic"))
    pooled = mixed[(mixed["alpha"] == 1.0) & (mixed["tau_prosodic"] == 0.5)].iloc[0]
    assert pooled["n_trials"] == 2 and pooled["n_folds"] == 6  # β = 10 and β = 5 mixed in one cell
    sweep = table.data[table.data["study"] == "emodistill-tau"]
    assert sweep["alpha"].isna().all() and (table.display.xs("emodistill-tau").index.get_level_values("α") == "—").all()


def test_one_grid_table_per_method(methods_store):
    data = load_studies(methods_store.uri, ["nsl-grid", "emodistill-tau", "lambda-pair"])
    grids = tables.knob_grids(data)
    assert [g.name for g in grids] == ["lambda-grid", "emodistill-grid", "nsl-grid"]
    assert set(grids[0].data["study"]) == {"lambda-pair"} and set(grids[2].data["study"]) == {"nsl-grid"}
    assert list(grids[0].data.columns[3:5]) == ["lambda_sd", "lambda_vd"] and set(grids[0].data["lambda_vd"]) == {1.0}
