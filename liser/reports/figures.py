"""Plotly figures of the report tables: Figure 2's curve, the knob grids (the λ heatmap and its kin), a search's
history and importances, confusion matrices.

Each figure is drawn from a table's tidy frame (never from runs directly), so what a
figure shows is what the CSV next to it holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

from liser.reports.grids import KNOB_SYMBOLS, KNOB_TITLES
from liser.reports.tables import BASELINE, FULL_FRACTION

BAND = "min–max over folds"
HEIGHT = 460
# A heatmap needs a grid: few values per axis, at least half of the cells filled; a
# search's continuous knobs are drawn as a scatter instead.
MAX_HEATMAP_AXIS = 12


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = hex_to_rgb(hex_color)
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    fig.update_layout(title=title, template="plotly_white", height=HEIGHT, margin=dict(l=60, r=20, t=60, b=50), **kw)
    return fig


def fraction_curve_figure(curve: pd.DataFrame, metric: str = "uar") -> go.Figure:
    """Figure 2: test ``metric`` against labeled fraction, one line per configuration (and data set), a min–max band, no-dstl at full data."""
    fig = go.Figure()
    many = curve["dataset"].nunique() > 1
    palette = qualitative.Plotly
    for i, ((ds, config), g) in enumerate(curve.groupby(["dataset", "config"], sort=False)):
        g = g.sort_values("labeled_fraction")
        name = f"{config} ({ds})" if many else config
        color = palette[i % len(palette)]
        x = g["labeled_fraction"].tolist()
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1], y=g[f"test_{metric}_max"].tolist() + g[f"test_{metric}_min"].tolist()[::-1], fill="toself", mode="lines",
                fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip", showlegend=False, name=f"{name} band", legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x, y=g[f"test_{metric}_mean"].tolist(), mode="lines+markers", name=name, legendgroup=name, line=dict(color=color),
                customdata=np.stack([g[f"test_{metric}_std"], g["n_folds"]], axis=1),
                hovertemplate="fraction %{x}<br>mean %{y:.3f} ± %{customdata[0]:.3f}<br>%{customdata[1]} folds<extra>" + name + "</extra>",
            )
        )
    level = f"{BASELINE.replace('-', '_')}_full_{metric}"
    for ds, value in curve.groupby("dataset", sort=False)[level].first().items():
        if np.isfinite(value):
            label = f"{BASELINE}, labeled fraction {FULL_FRACTION:g}" + (f" ({ds})" if many else "")
            fig.add_hline(y=float(value), line_dash="dash", line_color="gray", annotation_text=label, annotation_position="bottom right")
    return _layout(
        fig, f"Test {metric.upper()} against labeled fraction (band: {BAND})", xaxis_title="labeled fraction", yaxis_title=f"test {metric.upper()}"
    )


def _axes_of(g: pd.DataFrame) -> list[str]:
    """The knobs a group of a knob-grid table lays out: its knob columns with values, in the table's column order."""
    return [k for k in g.columns if k in KNOB_TITLES and g[k].notna().any()]


def _log_or_linear(values: pd.Series) -> str:
    return "log" if (values > 0).all() else "linear"  # EmoDistill's α and β may be 0


def knob_figure(grid: pd.DataFrame, study: str, dataset: str, config: str) -> go.Figure:
    """Mean validation UAR over a group's knobs (a knob-grid table's tidy frame) with the chosen cell marked.

    Two knobs: a heatmap (rows: the first knob), or a scatter when the values do not form a small grid
    (a search). One knob: validation and test UAR against it (EmoDistill's Figure 2).
    """
    g = grid[(grid["study"] == study) & (grid["dataset"] == dataset) & (grid["config"] == config)]
    best = g[g["chosen"]].iloc[0]
    axes = _axes_of(g)
    at = ", ".join(f"{KNOB_SYMBOLS[k]}={best[k]:g}" for k in axes)
    shown = KNOB_SYMBOLS[axes[0]] if len(axes) == 1 else f"({', '.join(KNOB_SYMBOLS[k] for k in axes)})"
    title = (
        f"{study}: {config} on {dataset}, mean validation UAR per {shown}<br>"
        f"chosen {at}: val UAR {best['val_uar_mean']:.3f}, test UAR {best['test_uar_mean']:.3f}"
    )
    fig = go.Figure()
    if len(axes) == 1:
        (knob,) = axes
        g = g.sort_values(knob)
        x = [f"{v:g}" for v in g[knob]]
        for metric, dash in (("val_uar", "solid"), ("test_uar", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=x, y=g[f"{metric}_mean"], mode="lines+markers", name=metric.replace("_uar", " UAR"), line=dict(dash=dash),
                    error_y=dict(type="data", array=g[f"{metric}_std"].fillna(0).tolist(), visible=True),
                )
            )
        fig.add_trace(
            go.Scatter(
                x=[f"{best[knob]:g}"], y=[best["val_uar_mean"]], mode="markers", name="chosen", hoverinfo="skip",
                marker=dict(symbol="star", size=18, color="red"),
            )
        )
        fig.update_xaxes(type="category")
        return _layout(fig, title, xaxis_title=KNOB_TITLES[knob], yaxis_title="UAR (mean ± std over folds)", title_font_size=13)
    rows, cols = axes
    n_rows, n_cols = g[rows].nunique(), g[cols].nunique()
    if max(n_rows, n_cols) <= MAX_HEATMAP_AXIS and 2 * len(g) >= n_rows * n_cols:
        z = g.pivot(index=rows, columns=cols, values="val_uar_mean").sort_index().sort_index(axis=1)
        text = [["" if np.isnan(v) else f"{v:.3f}" for v in row] for row in z.to_numpy()]
        fig.add_trace(
            go.Heatmap(
                z=z.to_numpy(), x=[f"{v:g}" for v in z.columns], y=[f"{v:g}" for v in z.index], text=text, texttemplate="%{text}",
                colorscale="Viridis", colorbar=dict(title="val UAR"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[f"{best[cols]:g}"], y=[f"{best[rows]:g}"], mode="markers", name="chosen", hoverinfo="skip",
                marker=dict(symbol="square-open", size=40, color="red", line=dict(width=3)),
            )
        )
        fig.update_xaxes(type="category")
        fig.update_yaxes(type="category")
    else:
        fig.add_trace(
            go.Scatter(
                x=g[cols], y=g[rows], mode="markers", name="trials",
                marker=dict(color=g["val_uar_mean"], colorscale="Viridis", showscale=True, size=10, colorbar=dict(title="val UAR")),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[best[cols]], y=[best[rows]], mode="markers+text", name="chosen", text=["chosen"], textposition="top center",
                marker=dict(symbol="star", size=18, color="red"),
            )
        )
        fig.update_xaxes(type=_log_or_linear(g[cols]))
        fig.update_yaxes(type=_log_or_linear(g[rows]))
    return _layout(fig, title, xaxis_title=KNOB_TITLES[cols], yaxis_title=KNOB_TITLES[rows], title_font_size=13, showlegend=False)


def lambda_figure(grid: pd.DataFrame, study: str, dataset: str, config: str) -> go.Figure:
    """LiSER's λ heatmap: :func:`knob_figure` over (λ_sd, λ_vd) of the λ grid table."""
    return knob_figure(grid, study, dataset, config)


def history_figure(history: pd.DataFrame, study: str) -> go.Figure:
    """Objective by trial number with the best-so-far line (Optuna's optimisation history)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=history["trial"], y=history["val_uar_mean"], mode="markers", name="trial", text=history["label"],
            hovertemplate="%{text}<br>val UAR %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(go.Scatter(x=history["trial"], y=history["best_so_far"], mode="lines", line_shape="hv", name="best so far"))
    return _layout(fig, f"{study}: optimisation history (mean validation UAR over folds)", xaxis_title="trial", yaxis_title="val UAR")


def importance_figure(importances: pd.DataFrame, study: str, method: str) -> go.Figure:
    imp = importances.sort_values("importance")
    fig = go.Figure(go.Bar(x=imp["importance"], y=imp["param"], orientation="h"))
    return _layout(fig, f"{study}: parameter importances ({method.split(' (')[0]})", xaxis_title="importance", title_font_size=13)


def confusion_figure(matrix: pd.DataFrame, title: str) -> go.Figure:
    """A true × predicted count heatmap, true classes top to bottom."""
    z = matrix.to_numpy()
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(matrix.columns), y=list(matrix.index), text=z.astype(int).astype(str), texttemplate="%{text}",
            colorscale="Blues", colorbar=dict(title="count"),
        )
    )
    fig.update_yaxes(autorange="reversed")
    side = 160 + 45 * len(matrix)
    fig = _layout(fig, title, xaxis_title="predicted", yaxis_title="true", title_font_size=12)
    fig.update_layout(height=max(side, 340), width=max(side + 140, 440), margin=dict(l=80, r=20, t=70, b=60))
    return fig
