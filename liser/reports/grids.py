"""The knob grids (LiSER's λ grid, section 3.6; NSL's n × α grid; EmoDistill's temperature sweeps) and
the optimisation history of search studies, from fold runs, as :class:`liser.reports.tables.Table` s.

A grid cell pools the folds of its trials; per (study, data set, configuration) the chosen cell
has the highest mean validation UAR, and its test UAR is what the paper reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from liser.configs import TrainConfig
from liser.reports.runs import StudyData
from liser.reports.tables import MISSING, Table, fmt_pm, fold_spread


# ---------------------------------------------------------------------- knob grids (the λ grid and its kin)
# Per method, the knobs its paper lays out as a grid figure, in axis order (rows, then columns):
# LiSER's λ grid (section 3.6), NSL's Figure 2 (n neighbours × α), EmoDistill's Figure 2 (one teacher's τ).
GRID_KNOBS = {
    "liser": ("lambda_sd", "lambda_vd"),
    "emodistill": ("alpha", "beta", "gamma", "tau_prosodic", "tau_linguistic"),
    "nsl": ("nsl_neighbors", "nsl_alpha"),
}
# Table headers and figure axis titles of each knob.
KNOB_SYMBOLS = {
    "lambda_sd": "λ_sd", "lambda_vd": "λ_vd", "nsl_neighbors": "neighbours", "nsl_alpha": "α",
    "alpha": "α", "beta": "β", "gamma": "γ", "tau_prosodic": "τ_P", "tau_linguistic": "τ_L",
}
KNOB_TITLES = {
    "lambda_sd": "λ_sd (speech distillation)", "lambda_vd": "λ_vd (video distillation)",
    "nsl_neighbors": "n (most neighbours)", "nsl_alpha": "α (neighbour-loss multiplier)",
    "alpha": "α (logit KD weight)", "beta": "β (embedding KD weight)", "gamma": "γ (cross-entropy weight)",
    "tau_prosodic": "τ_P (prosodic teacher's temperature)", "tau_linguistic": "τ_L (linguistic teacher's temperature)",
}
GRID_TABLES = {  # method -> (file suffix, title)
    "liser": ("lambda-grid", "λ grid: validation choice"),
    "emodistill": ("emodistill-grid", "EmoDistill grid: validation choice"),
    "nsl": ("nsl-grid", "NSL grid (n × α): validation choice"),
}
GROUP = ["study", "dataset", "config"]


@dataclass(frozen=True)
class KnobGroup:
    """One (study, data set, configuration) laid out over ``knobs``: (rows, columns) of a heatmap, or one axis."""

    study: str
    dataset: str
    config: str
    method: str
    knobs: tuple[str, ...]


def _with_knobs(frame: pd.DataFrame) -> pd.DataFrame:
    """Every grid knob as a number (TrainConfig's default where a run did not log it) and the method ("liser" if unlogged)."""
    out = frame.copy()
    out["method"] = out["method"].where(out["method"].notna(), "liser") if "method" in out else "liser"
    for knob in dict.fromkeys(k for knobs in GRID_KNOBS.values() for k in knobs):
        default = TrainConfig.model_fields[knob].default
        out[knob] = pd.to_numeric(out[knob], errors="coerce").fillna(default) if knob in out else float(default)
    return out


def _axes(trials: pd.DataFrame, method: str) -> tuple[str, ...]:
    """LiSER: both λs always (its grid as the paper draws it). Others: the knobs that vary, at most two,
    those with the most values (ties: the method's order), in the method's order."""
    knobs = GRID_KNOBS[method]
    if method == "liser":
        return knobs
    counts = {k: trials[k].nunique() for k in knobs if trials[k].nunique() > 1}
    top = sorted(counts, key=lambda k: (-counts[k], knobs.index(k)))[:2]
    return tuple(k for k in knobs if k in top)


def knob_groups(data: StudyData) -> list[KnobGroup]:
    """(study, data set, configuration) groups with at least two distinct cells over their method's grid knobs: a grid or a search."""
    t = _with_knobs(data.trials[data.trials["n_folds"] > 0])
    out = []
    for (study, ds, config, method), trials in t.groupby([*GROUP, "method"], sort=False):
        knobs = _axes(trials, method) if method in GRID_KNOBS else ()
        if knobs and len(trials[list(knobs)].drop_duplicates()) >= 2:
            out.append(KnobGroup(study, ds, config, method, knobs))
    return out


def knob_grid(data: StudyData, method: str = "liser") -> Table:
    """Mean validation UAR per cell of ``method``'s groups (see :func:`knob_groups`) over the folds of the cell's trials; per
    group, the chosen cell has the highest.

    One table per method, its knob columns named after the knobs (LiSER: lambda_sd, lambda_vd). A knob column is
    empty on the rows of a group that does not lay it out (fixed there, or mixed within its cells). The chosen
    cell's test UAR is what the paper reports; test UAR never chooses. Where knobs beyond the axes vary (a
    search), a cell mixes their trials (see n_trials).
    """
    folds = _with_knobs(data.folds)
    groups = [g for g in knob_groups(data) if g.method == method]
    columns = [k for k in GRID_KNOBS[method] if any(k in g.knobs for g in groups)] if method != "liser" else list(GRID_KNOBS["liser"])
    rows = []
    for g in groups:
        where = (folds["study"] == g.study) & (folds["dataset"] == g.dataset) & (folds["config"] == g.config)
        here = folds[where & (folds["method"] == g.method)]
        for values, cell in here.groupby(list(g.knobs), sort=True):
            val, test = fold_spread(cell, "val_uar"), fold_spread(cell, "test_uar")
            rows.append(
                {
                    "study": g.study, "dataset": g.dataset, "config": g.config, **{k: math.nan for k in columns},
                    **{k: float(v) for k, v in zip(g.knobs, values)},
                    "n_trials": cell["parent_run_id"].nunique(), "n_folds": len(cell),
                    "val_uar_mean": val["val_uar_mean"], "val_uar_std": val["val_uar_std"],
                    "test_uar_mean": test["test_uar_mean"], "test_uar_std": test["test_uar_std"],
                }
            )
    cols = [*GROUP, *columns, "n_trials", "n_folds"]
    tidy = pd.DataFrame(rows, columns=[*cols, "val_uar_mean", "val_uar_std", "test_uar_mean", "test_uar_std"])
    tidy["chosen"] = False
    for _, group in tidy.groupby(GROUP, sort=False):
        tidy.loc[group["val_uar_mean"].idxmax(), "chosen"] = True  # first maximum: the smaller knobs on ties
    display = pd.DataFrame(
        {
            "Study": tidy["study"], "Data set": tidy["dataset"], "Configuration": tidy["config"],
            **{KNOB_SYMBOLS[k]: tidy[k].map(lambda v: MISSING if pd.isna(v) else f"{v:g}") for k in columns},
            "val UAR": [fmt_pm(a, b) for a, b in zip(tidy["val_uar_mean"], tidy["val_uar_std"])],
            "test UAR": [fmt_pm(a, b) for a, b in zip(tidy["test_uar_mean"], tidy["test_uar_std"])],
            "n": tidy["n_folds"].astype(str),
            "chosen": tidy["chosen"].map({True: "chosen", False: ""}),
        }
    ).set_index(["Study", "Data set", "Configuration", *(KNOB_SYMBOLS[k] for k in columns)])
    note = (
        "Mean ± std over the folds of each cell's trials; per study, the chosen cell has the highest mean validation UAR, "
        "and its test UAR is the reported one."
    )
    if method != "liser":
        note += f" {MISSING}: not an axis of that study (fixed there, or mixed within its cells); n: folds."
    name, title = GRID_TABLES[method]
    return Table(name, title, tidy, display, note)


def knob_grids(data: StudyData) -> list[Table]:
    """One :func:`knob_grid` per method with a grid in ``data``, in the order LiSER, EmoDistill, NSL."""
    present = {g.method for g in knob_groups(data)}
    return [knob_grid(data, m) for m in GRID_KNOBS if m in present]


def lambda_groups(data: StudyData) -> list[tuple[str, str, str]]:
    """(study, data set, configuration) with at least two distinct (λ_sd, λ_vd) cells: LiSER's λ grid or a search."""
    return [(g.study, g.dataset, g.config) for g in knob_groups(data) if g.method == "liser"]


def lambda_grid(data: StudyData) -> Table:
    """LiSER's λ grid: :func:`knob_grid` over (λ_sd, λ_vd)."""
    return knob_grid(data, "liser")


# ---------------------------------------------------------------------- searches
def is_search(data: StudyData, study: str, many: int = 10) -> bool:
    """A search study: tagged so, or (untagged) with ``many`` or more trials of one configuration."""
    info = next(s for s in data.studies if s.name == study)
    if info.kind:
        return info.kind == "search"
    counts = data.trials[data.trials["study"] == study]["config"].value_counts()
    return bool(len(counts)) and int(counts.max()) >= many


def optimisation_history(data: StudyData, study: str) -> Table:
    """Objective (mean validation UAR over folds, as the parent run logged it) by trial number, with the best so far."""
    t = data.trials[(data.trials["study"] == study) & data.trials["val_uar_mean"].notna()].sort_values("trial")
    tidy = pd.DataFrame(
        {
            "study": study, "trial": t["trial"].to_numpy(), "label": t["label"].to_numpy(), "config": t["config"].to_numpy(),
            "val_uar_mean": t["val_uar_mean"].to_numpy(), "best_so_far": t["val_uar_mean"].cummax().to_numpy(),
            "test_uar_mean": t["test_uar_mean"].to_numpy(), "run_id": t["run_id"].to_numpy(),
        }
    )
    display = pd.DataFrame(
        {
            "Trial": tidy["trial"].astype(str), "Run": tidy["label"], "val UAR": tidy["val_uar_mean"].map(lambda v: f"{v:.3f}"),
            "best so far": tidy["best_so_far"].map(lambda v: f"{v:.3f}"), "test UAR": tidy["test_uar_mean"].map(lambda v: fmt_pm(v, math.nan)),
        }
    ).set_index("Trial")
    note = "FINISHED trials only; pruned, failed and killed trials are not shown."
    return Table(f"history-{study}", f"Optimisation history: {study}", tidy, display, note)
