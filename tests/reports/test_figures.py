"""Figures draw exactly the numbers of the tables they come from."""

import numpy as np
import pytest

from liser.reports import figures, grids, importance, tables


@pytest.fixture(scope="module")
def curve(loaded):
    return tables.fraction_curve(loaded).data


def test_fraction_curve_lines_bands_and_reference(curve):
    fig = figures.fraction_curve_figure(curve, "uar")
    assert "min–max over folds" in fig.layout.title.text
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["no-dstl", "vid-sp-dstl"] and len(bands) == 2
    for line, band in zip(lines, bands):
        points = curve[curve["config"] == line.name].sort_values("labeled_fraction")
        assert list(line.x) == points["labeled_fraction"].tolist()
        assert list(line.y) == points["test_uar_mean"].tolist()
        assert list(band.y) == points["test_uar_max"].tolist() + points["test_uar_min"].tolist()[::-1]
    (level,) = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert level.y0 == pytest.approx(curve["no_dstl_full_uar"].iloc[0])


def test_lambda_heatmap_marks_the_chosen_cell(loaded):
    grid = grids.lambda_grid(loaded).data
    fig = figures.lambda_figure(grid, "lambda-grid", "ravdess", "vid-sp-dstl")
    heat = next(t for t in fig.data if t.type == "heatmap")
    cells = grid[grid["study"] == "lambda-grid"]
    assert list(heat.y) == ["0.5", "1"] and list(heat.x) == ["0.5", "1", "5"]
    expected = cells.pivot(index="lambda_sd", columns="lambda_vd", values="val_uar_mean").to_numpy()
    assert np.allclose(np.array(heat.z, dtype=float), expected)
    chosen = next(t for t in fig.data if t.name == "chosen")
    assert (chosen.x[0], chosen.y[0]) == ("5", "1")
    assert "chosen λ_sd=1, λ_vd=5" in fig.layout.title.text


def test_search_lambdas_are_a_scatter(loaded):
    grid = grids.lambda_grid(loaded).data
    fig = figures.lambda_figure(grid, "search-ravdess", "ravdess", "vid-sp-dstl")
    assert not any(t.type == "heatmap" for t in fig.data)
    best = grid[(grid["study"] == "search-ravdess") & grid["chosen"]].iloc[0]
    chosen = next(t for t in fig.data if t.name == "chosen")
    assert (chosen.x[0], chosen.y[0]) == (best["lambda_vd"], best["lambda_sd"])


def test_history_and_importances(loaded):
    history = grids.optimisation_history(loaded, "search-ravdess").data
    fig = figures.history_figure(history, "search-ravdess")
    assert list(fig.data[0].y) == history["val_uar_mean"].tolist() and list(fig.data[1].y) == history["best_so_far"].tolist()
    imp = importance.param_importances(loaded, "search-ravdess").data
    bars = figures.importance_figure(imp, "search-ravdess", importance.FANOVA)
    assert dict(zip(bars.data[0].y, bars.data[0].x)) == pytest.approx(dict(zip(imp["param"], imp["importance"])))
    assert "fANOVA" in bars.layout.title.text


def test_confusion_heatmap(loaded):
    table = tables.confusion_matrices(loaded)
    matrix = tables.confusion_matrix(table, "ravdess", "vid-dstl")
    fig = figures.confusion_figure(matrix, "vid-dstl")
    assert list(fig.data[0].x) == ["neutral", "happy", "sad"] == list(fig.data[0].y)
    assert np.array(fig.data[0].z).tolist() == matrix.to_numpy().tolist()


@pytest.fixture(scope="module")
def other_methods(methods_store):
    from liser.reports.runs import load_studies

    return load_studies(methods_store.uri, ["nsl-grid", "emodistill-tau"])


def test_nsl_heatmap_over_neighbours_and_alpha(other_methods):
    grid = grids.knob_grid(other_methods, "nsl").data
    fig = figures.knob_figure(grid, "nsl-grid", "ravdess", "nsl")
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert list(heat.y) == ["3", "6"] and list(heat.x) == ["0.1", "1"]
    expected = grid.pivot(index="nsl_neighbors", columns="nsl_alpha", values="val_uar_mean").to_numpy()
    assert np.allclose(np.array(heat.z, dtype=float), expected)
    chosen = next(t for t in fig.data if t.name == "chosen")
    assert (chosen.x[0], chosen.y[0]) == ("0.1", "6")
    assert fig.layout.yaxis.title.text == "n (most neighbours)" and fig.layout.xaxis.title.text == "α (neighbour-loss multiplier)"
    assert "chosen neighbours=6, α=0.1" in fig.layout.title.text


def test_temperature_sweep_is_a_line(other_methods):
    grid = grids.knob_grid(other_methods, "emodistill").data
    fig = figures.knob_figure(grid, "emodistill-tau", "ravdess", "emodistill-no-linguistic")
    assert not any(t.type == "heatmap" for t in fig.data)
    val = next(t for t in fig.data if t.name == "val UAR")
    assert list(val.x) == ["0.1", "0.5", "2"] and list(val.y) == pytest.approx(grid["val_uar_mean"].tolist())
    chosen = next(t for t in fig.data if t.name == "chosen")
    assert chosen.x[0] == "0.5" and chosen.y[0] == pytest.approx(grid.loc[grid["chosen"], "val_uar_mean"].iloc[0])
    assert fig.layout.xaxis.title.text.startswith("τ_P") and "chosen τ_P=0.5" in fig.layout.title.text
