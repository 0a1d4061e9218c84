"""Self-contained offline HTML pages: plotly.js inlined once in <head>, nothing fetched from the network.

A page opens from a laptop, an archive or an air-gapped machine alike: no CDN, no
external CSS, fonts or images. The only addresses in it are links to the MLflow UI's
run and experiment pages (``{ui_url}/#/experiments/{id}/runs/{run}``).
"""

from __future__ import annotations

import datetime as _dt
import html

import pandas as pd

from liser.reports.runs import StudyData
from liser.reports.stats import TEST_NAME
from liser.reports.tables import Table

DEFAULT_UI_URL = "http://127.0.0.1:5000"  # where `liser ui` serves by default
PAIRS = "n_test/n_train = the mean over the runs of the pairs"
SELECTION = (
    "where a data set has several trials of one configuration, a cell uses the one at labeled fraction 1 "
    "(any fraction for Figure 2's points) with the highest mean validation UAR; the runs are listed at the end"
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; font-size: 0.9em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; word-break: break-all; }
code { font-size: 0.92em; } .note { color: #555; font-size: 0.88em; } .figure { margin: 1em 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0 1em; }
"""


def ui_url_for(tracking_uri: str, ui_url: str | None = None) -> str:
    """Where the MLflow UI is: given, else the tracking server itself, else `liser ui`'s address."""
    if ui_url:
        return ui_url.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return DEFAULT_UI_URL


def experiment_url(ui_url: str, experiment_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}"


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


def link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(str(text))}</a>'


def figure_html(fig) -> str:
    """One figure's div and script, without plotly.js (the page carries it once)."""
    height = fig.layout.height or 460
    body = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True}, default_height=f"{height}px")
    return f'<div class="figure">{body}</div>'


def figures_html(figs, side_by_side: bool = False) -> str:
    inner = "".join(figure_html(f) for f in figs)
    return f'<div class="figures">{inner}</div>' if side_by_side else inner


def table_html(table: Table) -> str:
    body = table.display.to_html(border=0, na_rep="", escape=True)
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return body + note


def _items(values: list[str]) -> str:
    return ", ".join(f"<code>{html.escape(v)}</code>" for v in values) if values else "—"


def provenance_html(data: StudyData, ui_url: str) -> str:
    """Where the numbers came from: studies, data, code, and the test the tables use."""
    parts = []
    for s in data.studies:
        status = ", ".join(f"{n} {html.escape(k)}" for k, n in sorted(s.trial_status.items()))
        kind = html.escape(s.kind or "kind not tagged")
        rows = [
            ("Study", f"<strong>{html.escape(s.name)}</strong> ({kind}, spec hash <code>{html.escape(s.spec_hash or '—')}</code>)"),
            ("Description", html.escape(s.description or "—")),
            ("MLflow experiment", link(experiment_url(ui_url, s.experiment_id), f"experiment {s.experiment_id}")),
            ("Data sets", _items(s.datasets)),
            ("Labeled corpus manifest", _items(s.labeled_manifests)),
            ("Unlabeled corpus manifest", _items(s.unlabeled_manifests)),
            ("Teacher outputs", _items(s.teachers)),
            ("Git commit", _items(s.git_commits)),
            ("liser version", _items(s.versions)),
            ("Trial runs", f"{status} (only FINISHED runs and their FINISHED fold runs enter the tables)"),
        ]
        parts.append('<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>")
    general = [
        ("Tracking URI", f"<code>{html.escape(data.tracking_uri)}</code>"),
        ("Statistical test", f"{html.escape(TEST_NAME)}; n = the number of paired (fold, seed) runs, given per cell; {PAIRS}"),
        ("Trial per cell", SELECTION),
        ("Generated", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    parts.append('<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in general) + "</dl>")
    return "\n".join(parts)


def runs_html(data: StudyData, run_ids: list[str], ui_url: str) -> str:
    """The trials behind the tables, each linked to its MLflow parent run and fold runs."""
    trials = data.trials[data.trials["run_id"].isin(run_ids)]
    rows = []
    for _, t in trials.iterrows():
        folds = data.folds[data.folds["parent_run_id"] == t["run_id"]]
        fold_links = " ".join(
            link(run_url(ui_url, f["experiment_id"], f["run_id"]), f"{f['fold']}" + (f"/s{f['seed']}" if f["seed"] else ""))
            for _, f in folds.iterrows()
        )
        fraction = t.get("labeled_fraction", "")
        cells = [
            html.escape(str(t["dataset"])), html.escape(str(t["config"])), html.escape(str(t["study"])),
            link(run_url(ui_url, t["experiment_id"], t["run_id"]), t["label"] or t["run_id"]),
            "" if pd.isna(fraction) else html.escape(f"{fraction:g}" if isinstance(fraction, float) else str(fraction)),
            f"{t['val_uar_mean']:.3f}" if pd.notna(t["val_uar_mean"]) else "—", fold_links,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Data set", "Configuration", "Study", "Trial run", "Labeled fraction", "val UAR", "Fold runs"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """The whole document; ``sections`` are (heading, inner HTML)."""
    from plotly.offline import get_plotlyjs

    body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{inner}\n</section>" for h, inner in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}</style>\n<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
