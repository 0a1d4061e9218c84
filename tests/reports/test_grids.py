"""The knob grids and search histories (liser/reports/grids.py) against numbers computed here from what the fixture logged."""

import numpy as np
import pytest

from liser.reports import grids
from liser.reports.runs import load_studies


def values(raw: dict, metric: str) -> np.ndarray:
    return np.array([f[metric] for f in raw["folds"]], dtype=float)


# --------------------------------------------------------------------- λ grid
def test_lambda_grid_cells_and_choice(fake_store):
    data = load_studies(fake_store.uri, ["lambda-grid"])
    assert grids.lambda_groups(data) == [("lambda-grid", "ravdess", "vid-sp-dstl")]
    grid = grids.lambda_grid(data).data
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
    assert grids.lambda_groups(table2_data) == []


# --------------------------------------------------------------------- searches
def test_search_detection(loaded):
    assert grids.is_search(loaded, "search-ravdess")
    assert not grids.is_search(loaded, "lambda-grid") and not grids.is_search(loaded, "table2-ravdess")


def test_optimisation_history(fake_store, loaded):
    history = grids.optimisation_history(loaded, "search-ravdess").data
    raws = sorted(fake_store.finished("search-ravdess").values(), key=lambda r: r["trial"])
    val = [values(r, "val_uar").mean() for r in raws]
    assert history["trial"].tolist() == list(range(8))  # the KILLED trial 8 is not there
    assert history["val_uar_mean"].tolist() == pytest.approx(val)
    assert history["best_so_far"].tolist() == pytest.approx(np.maximum.accumulate(val).tolist())


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
    assert grids.knob_groups(data) == [grids.KnobGroup("nsl-grid", "ravdess", "nsl", "nsl", ("nsl_neighbors", "nsl_alpha"))]
    assert grids.lambda_groups(data) == []  # cnn6 ran once
    table = grids.knob_grid(data, "nsl")
    assert (table.name, table.title) == ("nsl-grid", "NSL grid (n × α): validation choice")
    assert list(table.data.columns[:5]) == ["study", "dataset", "config", "nsl_neighbors", "nsl_alpha"]
    cells = by_cell(methods_store, "nsl-grid", ("nsl_neighbors", "nsl_alpha"))
    assert len(cells) == 4 and set(table.data["n_trials"]) == {1}
    assert check_cells(table.data, cells, ("nsl_neighbors", "nsl_alpha")) == (6.0, 0.1)
    assert table.display.index.names[3:] == ["neighbours", "α"]
    assert table.display.loc[("nsl-grid", "ravdess", "nsl", "6", "0.1"), "chosen"] == "chosen"


def test_emodistill_temperature_sweep_is_one_axis(methods_store):
    data = load_studies(methods_store.uri, ["emodistill-tau"])
    (group,) = grids.knob_groups(data)
    assert (group.method, group.knobs) == ("emodistill", ("tau_prosodic",))
    table = grids.knob_grid(data, "emodistill")
    assert table.name == "emodistill-grid" and "tau_linguistic" not in table.data and "alpha" not in table.data
    cells = by_cell(methods_store, "emodistill-tau", ("tau_prosodic",))
    assert check_cells(table.data, cells, ("tau_prosodic",)) == (0.5,)
    assert table.data["tau_prosodic"].tolist() == [0.1, 0.5, 2.0]


def test_emodistill_three_knobs_keep_the_two_with_most_values(methods_store):
    data = load_studies(methods_store.uri, ["emodistill-mixed", "emodistill-tau"])
    groups = {g.study: g.knobs for g in grids.knob_groups(data)}
    # τ_P has 3 values; α and β 2 each, α first on the tie
    assert groups == {"emodistill-mixed": ("alpha", "tau_prosodic"), "emodistill-tau": ("tau_prosodic",)}
    table = grids.knob_grid(data, "emodistill")
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
    tables = grids.knob_grids(data)
    assert [g.name for g in tables] == ["lambda-grid", "emodistill-grid", "nsl-grid"]
    assert set(tables[0].data["study"]) == {"lambda-pair"} and set(tables[2].data["study"]) == {"nsl-grid"}
    assert list(tables[0].data.columns[3:5]) == ["lambda_sd", "lambda_vd"] and set(tables[0].data["lambda_vd"]) == {1.0}
