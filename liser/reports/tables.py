"""The paper's tables and curves, computed from fold runs: Table 2, Table 3, Figure 2's points and the
confusion matrices (the knob grids and search histories are in :mod:`liser.reports.grids`).

Every table is a :class:`Table`: ``data`` holds the numbers, one tidy row per cell (what
the CSV file holds), ``display`` the formatted cells laid out like the paper (what the
Markdown, LaTeX and HTML show). Means and standard deviations (ddof=1) are over the
FINISHED fold runs of one trial, on test metrics unless the column says val.

When a data set has several trials of one configuration (a λ grid, several studies, a
search), a table uses the one the paper would: labeled fraction 1 if there is one, then
the highest mean validation UAR (section 3.6 picks λ on validation). Ties go to the
earlier study and trial. The chosen trial of every cell is in ``data``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liser.errors import ReportError
from liser.configs import PRESETS, TrainConfig, baseline_of, student_name
from liser.reports.runs import StudyData, load_confusion
from liser.reports.stats import compare_folds, relative_change

BASELINE = "no-dstl"
FULL_FRACTION = TrainConfig.model_fields["labeled_fraction"].default  # 1.0: every labeled clip
NO_LAMBDA = TrainConfig.model_fields["lambda_sd"].default  # 0.0: that teacher is off
# Table 3: rows, and per column (teacher) the configuration of each row; row 1 is the baseline.
ABLATION_ROWS = ("vid-dstl / sp-dstl", "distill-ce", "two-stage-train")
ABLATION_COLUMNS = {
    "Video": ("vid-dstl", "vid-distill-ce", "vid-two-stage-train"),
    "Speech": ("sp-dstl", "sp-distill-ce", "sp-two-stage-train"),
    "Both": ("vid-sp-dstl", "distill-ce", "two-stage-train"),
}
ABLATION_CONFIGS = {c for names in ABLATION_COLUMNS.values() for c in names[1:]}
MISSING = "—"


@dataclass
class Table:
    name: str  # file suffix: <report>-<name>.csv
    title: str
    data: pd.DataFrame  # tidy numbers (CSV)
    display: pd.DataFrame  # formatted cells (Markdown, LaTeX, HTML)
    note: str = ""


# ---------------------------------------------------------------------- formatting
def fmt_pm(mean: float, std: float) -> str:
    if mean is None or not np.isfinite(mean):
        return MISSING
    return f"{mean:.3f}" if std is None or not np.isfinite(std) else f"{mean:.3f} ± {std:.3f}"


def fmt_change(pct: float) -> str:
    return "n/a" if not np.isfinite(pct) else f"{pct:+.2f} %"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _compared(pm: str, change: float, p: float) -> str:
    return f"{pm} ({fmt_change(change)}, {fmt_p(p)})"


# ---------------------------------------------------------------------- selection
def config_order(names) -> list[str]:
    """The paper's order (no-dstl, vid-dstl, sp-dstl, vid-sp-dstl, conf-vid-sp-dstl, then the ablations), then the rest by name."""
    names = set(names)
    return [c for c in PRESETS if c in names] + sorted(names - set(PRESETS))


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """labeled_fraction and the λs as numbers, defaults where a trial did not log them."""
    out = frame.copy()
    for col, default in (("labeled_fraction", FULL_FRACTION), ("lambda_sd", NO_LAMBDA), ("lambda_vd", NO_LAMBDA)):
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(default) if col in out else float(default)
    return out


def datasets(data: StudyData) -> list[str]:
    """Data sets in the order the studies were named."""
    return list(dict.fromkeys(d for s in data.studies for d in s.datasets))


def in_paper_order(frame: pd.DataFrame, data: StudyData, *then: str) -> pd.DataFrame:
    """Rows by data set (as the studies were named), configuration (the paper's order), then ``then``."""
    ds_rank = {d: i for i, d in enumerate(datasets(data))}
    config_rank = {c: i for i, c in enumerate(config_order(frame["config"]))}
    keys = frame.assign(_d=frame["dataset"].map(ds_rank), _c=frame["config"].map(config_rank))
    return keys.sort_values(["_d", "_c", *then], kind="stable").drop(columns=["_d", "_c"]).reset_index(drop=True)


def select_trials(data: StudyData, by: tuple[str, ...] = ("dataset", "config"), *, prefer_full: bool = True) -> pd.DataFrame:
    """One trial per ``by`` group: full labeled data first (if ``prefer_full``), then best mean validation UAR."""
    t = with_defaults(data.trials[data.trials["n_folds"] > 0])
    t["_full"] = t["labeled_fraction"] == FULL_FRACTION if prefer_full else True
    t["_study"] = t["study"].map({s: i for i, s in enumerate(data.names)})
    t = t.sort_values(["_full", "val_uar_mean", "_study", "trial"], ascending=[False, False, True, True], na_position="last")
    return t.groupby(list(by), sort=False).head(1).drop(columns=["_full", "_study"])


def trial_folds(data: StudyData, run_id: str) -> pd.DataFrame:
    return data.folds[data.folds["parent_run_id"] == run_id]


def fold_spread(folds: pd.DataFrame, metric: str) -> dict[str, float]:
    """Mean, std (ddof=1), min and max of ``metric`` over fold runs, as ``<metric>_mean`` etc."""
    v = folds[metric].astype(float)
    return {
        f"{metric}_mean": float(v.mean()) if len(v) else math.nan,
        f"{metric}_std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
        f"{metric}_min": float(v.min()) if len(v) else math.nan,
        f"{metric}_max": float(v.max()) if len(v) else math.nan,
    }


def _cell(data: StudyData, trial: pd.Series, base: pd.Series | None) -> dict:
    """Test UAR/WAR of one trial's folds; against a baseline trial (change in %, corrected t-test) when given."""
    folds = trial_folds(data, trial["run_id"])
    row = {"study": trial["study"], "trial": trial["trial"], "label": trial["label"], "run_id": trial["run_id"], "n_folds": len(folds)}
    for m in ("test_uar", "test_war"):
        s = fold_spread(folds, m)
        row[f"{m}_mean"], row[f"{m}_std"] = s[f"{m}_mean"], s[f"{m}_std"]
    row.update(baseline=base["config"] if base is not None else "", n_paired=math.nan, ratio=math.nan)
    for m, short in (("test_uar", "uar"), ("test_war", "war")):
        row[f"{short}_change_pct"] = row[f"{short}_t"] = row[f"{short}_p"] = math.nan
        if base is not None:
            bfolds = trial_folds(data, base["run_id"])
            test = compare_folds(folds, bfolds, m)
            row[f"{short}_change_pct"] = relative_change(row[f"{m}_mean"], float(bfolds[m].mean()))
            row.update({f"{short}_t": test.t, f"{short}_p": test.p, "n_paired": test.n, "ratio": test.ratio})
    return row


def _display_cell(row: dict, metric: str) -> str:
    pm = fmt_pm(row[f"test_{metric}_mean"], row[f"test_{metric}_std"])
    return _compared(pm, row[f"{metric}_change_pct"], row[f"{metric}_p"]) if row["baseline"] else pm


def _n(row: dict) -> str:
    n = row["n_paired"] if row["baseline"] else row["n_folds"]
    return str(int(n)) if np.isfinite(n) else MISSING


# ---------------------------------------------------------------------- Table 2
def _text(trial: pd.Series, column: str, default: str) -> str:
    value = trial.get(column)
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def method_of(trial: pd.Series) -> tuple[str, str]:
    """(method, student) of a trial; runs logged before methods existed are LiSER's CNN-LSTM."""
    return _text(trial, "method", "liser"), student_name(_text(trial, "student", "cnn-lstm"))


def configuration_table(data: StudyData) -> Table:
    """Table 2: test UAR/WAR per configuration (rows) and data set (column groups), each against its
    method's baseline: no-dstl (LiSER), emodistill-no-teachers (EmoDistill), cnn6 (NSL on CNN-6)."""
    chosen = select_trials(data)
    rows = []
    for ds in datasets(data):
        here = chosen[chosen["dataset"] == ds].set_index("config", drop=False)
        for config in config_order(here.index):
            trial = here.loc[config]
            method, student = method_of(trial)
            name = baseline_of(method, student)
            base = here.loc[name] if name in here.index and name != config else None
            rows.append({"dataset": ds, "config": config, "method": method, "student": student, **_cell(data, trial, base)})
    tidy = pd.DataFrame(rows)
    order = config_order(tidy["config"]) if len(tidy) else []
    cols = pd.MultiIndex.from_product([datasets(data), ["UAR", "WAR", "n"]])
    display = pd.DataFrame(MISSING, index=pd.Index(order, name="Configuration"), columns=cols)
    for row in rows:
        display.loc[row["config"], (row["dataset"], "UAR")] = _display_cell(row, "uar")
        display.loc[row["config"], (row["dataset"], "WAR")] = _display_cell(row, "war")
        display.loc[row["config"], (row["dataset"], "n")] = _n(row)
    note = (
        "Test UAR and WAR, mean ± std (ddof=1) over folds; in brackets the change relative to the method's baseline "
        f"(the same student without teachers: {BASELINE} for LiSER, {baseline_of('emodistill')} for EmoDistill, "
        f"{baseline_of('nsl', 'cnn6')} for NSL on CNN-6) "
        "(100·(a−b)/b) and the p-value of the corrected t-test over the paired folds; n: folds of the baseline row, paired folds otherwise."
    )
    return Table("table2", "Table 2: configurations", tidy, display, note)


def methods_table(data: StudyData) -> Table:
    """Per configuration: method, student, its parameter count, the baseline it is compared with and,
    for NSL, its graphs (mean degree and share of isolated training clips, averaged over folds)."""
    chosen = select_trials(data)
    rows = []
    for _, trial in in_paper_order(chosen, data).iterrows():
        method, student = method_of(trial)
        folds = trial_folds(data, trial["run_id"])
        params = folds["n_parameters"].dropna() if "n_parameters" in folds else pd.Series(dtype=float)
        degree = folds["n_graph_mean_degree"].dropna() if "n_graph_mean_degree" in folds else pd.Series(dtype=float)
        isolated = folds["n_graph_isolated_fraction"].dropna() if "n_graph_isolated_fraction" in folds else pd.Series(dtype=float)
        rows.append({
            "dataset": trial["dataset"], "config": trial["config"], "method": method, "student": student,
            "parameters": int(params.iloc[0]) if len(params) else None, "baseline": baseline_of(method, student),
            "graph_mean_degree": float(degree.mean()) if len(degree) else math.nan,
            "graph_isolated_fraction": float(isolated.mean()) if len(isolated) else math.nan,
        })
    cols = ["dataset", "config", "method", "student", "parameters", "baseline", "graph_mean_degree", "graph_isolated_fraction"]
    tidy = pd.DataFrame(rows, columns=cols)
    graph = [
        MISSING if not np.isfinite(d) else f"{d:.2f} neighbours, {100 * i:.0f} % isolated"
        for d, i in zip(tidy["graph_mean_degree"].astype(float), tidy["graph_isolated_fraction"].astype(float))
    ]
    display = pd.DataFrame({
        "Data set": tidy["dataset"].to_numpy(), "Method": tidy["method"].to_numpy(), "Student": tidy["student"].to_numpy(),
        "Parameters": tidy["parameters"].map(lambda v: MISSING if v is None or pd.isna(v) else f"{int(v):,}").to_numpy(),
        "Compared with": tidy["baseline"].to_numpy(), "NSL graph": graph,
    }, index=pd.Index(tidy["config"], name="Configuration"))
    note = (
        "The student each configuration trains and its size (the papers' on-device claims rest on it); rows compare with their "
        "baseline. NSL graph: mean neighbours per training clip and the share with none (ε too strict leaves clips isolated)."
    )
    return Table("methods", "Methods and students", tidy, display, note)


# ---------------------------------------------------------------------- Table 3
def has_methods(data: StudyData) -> bool:
    """Whether any trial is not LiSER's own method on its CNN-LSTM (then reports add the methods table)."""
    return any(method_of(t) != ("liser", "cnn-lstm") for _, t in data.trials.iterrows())


def has_ablations(data: StudyData) -> bool:
    return bool(ABLATION_CONFIGS & set(data.trials["config"]))


def ablation_table(data: StudyData) -> Table | None:
    """Table 3: distillation loss and schedule per teacher; each column's row 1 is its baseline. None without ablations."""
    chosen = select_trials(data)
    rows = []
    groups = []
    for ds in datasets(data):
        here = chosen[chosen["dataset"] == ds].set_index("config", drop=False)
        for column, configs in ABLATION_COLUMNS.items():
            if not any(c in here.index for c in configs[1:]):  # only columns with ablation data
                continue
            groups.append((ds, column))
            base = here.loc[configs[0]] if configs[0] in here.index else None
            for i, (label, config) in enumerate(zip(ABLATION_ROWS, configs)):
                if config not in here.index:
                    continue
                rows.append({"dataset": ds, "column": column, "row": label, "config": config, **_cell(data, here.loc[config], base if i else None)})
    if not rows:
        return None
    tidy = pd.DataFrame(rows)
    many = len({g[0] for g in groups}) > 1
    heads = [f"{ds}: {col}" if many else col for ds, col in groups]
    cols = pd.MultiIndex.from_tuples([(h, m) for h in heads for m in ("UAR", "WAR", "n")])
    display = pd.DataFrame(MISSING, index=pd.Index(list(ABLATION_ROWS), name="Configuration"), columns=cols)
    for row in rows:
        head = f"{row['dataset']}: {row['column']}" if many else row["column"]
        display.loc[row["row"], (head, "UAR")] = _display_cell(row, "uar")
        display.loc[row["row"], (head, "WAR")] = _display_cell(row, "war")
        display.loc[row["row"], (head, "n")] = _n(row)
    note = (
        "Video: vid-dstl, vid-distill-ce, vid-two-stage-train; Speech: sp-*; Both: vid-sp-dstl, distill-ce, two-stage-train. "
        "Test UAR/WAR mean ± std over folds; in brackets the change relative to the column's first row and the corrected t-test p-value."
    )
    return Table("table3", "Table 3: distillation loss and training schedule", tidy, display, note)


# ---------------------------------------------------------------------- Figure 2
def _range_text(tidy: pd.DataFrame, metric: str) -> list[str]:
    columns = [tidy[f"{metric}_{s}"] for s in ("mean", "std", "min", "max")]
    return [f"{fmt_pm(a, b)} [{lo:.3f}, {hi:.3f}]" for a, b, lo, hi in zip(*columns)]


def fraction_values(data: StudyData) -> list[float]:
    return sorted(with_defaults(data.trials)["labeled_fraction"].unique())


def fraction_curve(data: StudyData) -> Table:
    """Figure 2's points: test UAR/WAR over folds per configuration and labeled fraction, and no-dstl's full-data level.

    A configuration is on the curve when it ran with less than all labeled data; its
    full-data point is added when it has one. One trial per point (see the module doc).
    """
    chosen = select_trials(data, ("dataset", "config", "labeled_fraction"), prefer_full=False)
    partial = chosen[chosen["labeled_fraction"] != FULL_FRACTION][["dataset", "config"]].drop_duplicates()
    if partial.empty:
        raise ReportError(
            f"study {' + '.join(data.names)}: no finished trial with labeled_fraction below 1, so there is no curve to draw; "
            "run a study that grids labeled_fraction (e.g. studies/labeled-fraction.yaml) and pass it with --study"
        )
    on_curve = chosen.merge(partial, on=["dataset", "config"])
    rows = []
    for _, trial in on_curve.iterrows():
        folds = trial_folds(data, trial["run_id"])
        rows.append(
            {
                "dataset": trial["dataset"], "config": trial["config"], "labeled_fraction": float(trial["labeled_fraction"]),
                "study": trial["study"], "trial": trial["trial"], "run_id": trial["run_id"], "n_folds": len(folds),
                **fold_spread(folds, "test_uar"), **fold_spread(folds, "test_war"),
            }
        )
    columns = ["dataset", "config", "labeled_fraction", "study", "trial", "run_id", "n_folds"]
    columns += [f"test_{m}_{s}" for m in ("uar", "war") for s in ("mean", "std", "min", "max")]
    tidy = pd.DataFrame(rows, columns=columns)
    full = chosen[(chosen["config"] == BASELINE) & (chosen["labeled_fraction"] == FULL_FRACTION)]
    for m in ("uar", "war"):
        level = {ds: float(trial_folds(data, rid)[f"test_{m}"].mean()) for ds, rid in zip(full["dataset"], full["run_id"])}
        tidy[f"{BASELINE.replace('-', '_')}_full_{m}"] = tidy["dataset"].map(level).astype(float)
    tidy = in_paper_order(tidy, data, "labeled_fraction")
    display = pd.DataFrame(
        {
            "Data set": tidy["dataset"], "Configuration": tidy["config"],
            "Labeled fraction": tidy["labeled_fraction"].map(lambda f: f"{f:g}"),
            "UAR": _range_text(tidy, "test_uar"), "WAR": _range_text(tidy, "test_war"),
            "n": tidy["n_folds"].astype(str),
        }
    ).set_index(["Data set", "Configuration", "Labeled fraction"])
    note = f"Test UAR/WAR mean ± std [min, max] over folds; the {BASELINE} level at labeled fraction 1 is the reference line of the figure."
    return Table("fraction-curve", "Figure 2: labeled fraction", tidy, display, note)


# ---------------------------------------------------------------------- confusion
def confusion_matrices(data: StudyData) -> Table:
    """Test confusion matrices per data set and configuration (the Table 2 trial), summed over its folds."""
    chosen = select_trials(data)
    folds = data.folds[data.folds["parent_run_id"].isin(chosen["run_id"])]
    long = load_confusion(data.tracking_uri, folds["run_id"].tolist())
    long = long.merge(folds[["run_id", "dataset", "config"]], on="run_id")
    rows = []
    for (ds, config), g in long.groupby(["dataset", "config"], sort=False):
        classes = list(dict.fromkeys(g["true"]))
        summed = g.groupby(["true", "predicted"], sort=False)["count"].sum()
        n = g["run_id"].nunique()
        for true in classes:
            for pred in classes:
                rows.append({"dataset": ds, "config": config, "true": true, "predicted": pred, "count": int(summed.get((true, pred), 0)), "n_folds": n})
    tidy = pd.DataFrame(rows, columns=["dataset", "config", "true", "predicted", "count", "n_folds"])
    tidy = in_paper_order(tidy, data)
    pairs = tidy[["dataset", "config"]].drop_duplicates().itertuples(index=False)
    blocks = [_square(tidy, ds, config).rename(index=lambda c, ds=ds, cfg=config: (ds, cfg, c)) for ds, config in pairs]
    if blocks:
        display = pd.concat(blocks)
        display.index = pd.MultiIndex.from_tuples(display.index)
    else:  # no fold logged a confusion matrix
        display = pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []]))
    display = display.map(lambda v: MISSING if pd.isna(v) else str(int(v)))
    display.index.names = ["Data set", "Configuration", "true \\ predicted"]
    display.columns.name = None
    return Table("confusion", "Confusion matrices (test, summed over folds)", tidy, display, "Rows: true class; columns: predicted class.")


def _square(tidy: pd.DataFrame, dataset: str, config: str) -> pd.DataFrame:
    g = tidy[(tidy["dataset"] == dataset) & (tidy["config"] == config)]
    classes = list(dict.fromkeys(g["true"]))
    return g.pivot(index="true", columns="predicted", values="count").loc[classes, classes]


def confusion_matrix(table: Table, dataset: str, config: str) -> pd.DataFrame:
    """One summed matrix as a square frame (true × predicted) in the tables' class order."""
    return _square(table.data, dataset, config)
