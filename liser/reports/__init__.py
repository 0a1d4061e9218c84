"""Reports built only from what MLflow holds: the paper's tables and figures as offline HTML, CSV, Markdown and LaTeX.

``build_report`` reads one or several studies from any tracking URI and works out which
sections apply from the data: the configurations table (Table 2) always, Table 3 when
ablation configurations ran, Figure 2 when several labeled fractions ran, a knob grid per
method when one configuration ran with several values of its method's grid knobs (LiSER's
(λ_sd, λ_vd), NSL's (n, α), EmoDistill's weights and temperatures), a search's history and
parameter importances, and the confusion matrices. ``build_fraction_curve`` writes Figure 2 alone.
Both return the paths they wrote.
"""

from __future__ import annotations

from html import escape as _escape
from pathlib import Path

from liser.reports import figures, html
from liser.reports.formats import write_table
from liser.reports.grids import is_search, knob_grid, knob_grids, knob_groups, lambda_grid, optimisation_history
from liser.reports.importance import param_importances
from liser.reports.runs import StudyData, StudyNotFound, load_confusion, load_studies, load_teacher_summary
from liser.reports.stats import TEST_NAME, compare_folds, corrected_ttest, relative_change
from liser.reports.truth import student_truth_table, truth_sentence
from liser.reports.tables import (
    Table,
    ablation_table,
    configuration_table,
    confusion_matrices,
    confusion_matrix,
    fraction_curve,
    fmt_pm,
    fraction_values,
    has_ablations,
    has_methods,
    methods_table,
    select_trials,
)

__all__ = [
    "StudyData", "StudyNotFound", "Table", "TEST_NAME", "build_fraction_curve", "build_report", "load_studies", "load_confusion",
    "corrected_ttest", "compare_folds", "relative_change", "configuration_table", "ablation_table", "fraction_curve", "lambda_grid",
    "knob_grid", "knob_grids", "knob_groups",
    "optimisation_history", "param_importances", "confusion_matrices", "select_trials",
]


def _name(studies: list[str], name: str | None) -> str:
    return name or "+".join(dict.fromkeys(studies))


def _open(tracking_uri: str, studies: list[str], out_dir: Path, name: str | None, ui_url: str | None) -> tuple[StudyData, Path, str, str]:
    """What every report starts from: the studies' runs, the output folder (created), the file stem and the UI address."""
    data = load_studies(tracking_uri, studies)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return data, out_dir, _name(data.names, name), html.ui_url_for(tracking_uri, ui_url)


def _title(data: StudyData) -> str:
    return "LiSER report: " + " + ".join(data.names)


def _write(table: Table, out_dir: Path, name: str, written: list[Path]) -> None:
    written.extend(write_table(table, out_dir / f"{name}-{table.name}"))


def _section(table: Table, figs: list = ()) -> tuple[str, str]:
    return table.title, html.table_html(table) + "".join(html.figure_html(f) for f in figs)


def _fraction_section(data: StudyData, out_dir: Path, name: str, written: list[Path]) -> tuple[str, str, list[str]]:
    curve = fraction_curve(data)
    _write(curve, out_dir, name, written)
    figs = [figures.fraction_curve_figure(curve.data, "uar"), figures.fraction_curve_figure(curve.data, "war")]
    heading, inner = _section(curve, figs)
    return heading, inner, curve.data["run_id"].tolist()


TEACHER_COLUMNS = ("file", "kind", "teacher", "coverage", "top_class", "top_share", "mean_confidence", "val_uar", "truth_accuracy", "warnings")


def _teachers_section(data: StudyData, ui: str, students: Table | None = None) -> str:
    """Each study's teacher diagnosis (its ``teachers`` run): the summary table and links to the run and its page;
    then, where a hidden truth exists, the students on the same clips."""
    parts = []
    for s in data.studies:
        if not s.teacher_runs:
            continue
        run = s.teacher_runs[0]
        table = load_teacher_summary(data.tracking_uri, run)
        url = html.run_url(ui, s.experiment_id, run)
        parts.append(
            f"<p>{_escape(s.name)}: are the teachers any good on the unlabeled clips? Diagnosis in MLflow run {html.link(url, 'teachers')} "
            f"(artifact <code>teachers.html</code>: class distributions, confidence, speech-video agreement; "
            f"the same page as <code>liser teacher report</code>).</p>"
            + (table[[c for c in TEACHER_COLUMNS if c in table]].to_html(border=0, index=False, na_rep="-", float_format=lambda v: f"{v:.3f}") if len(table) else "")
        )
        sentence = truth_sentence(table, students) if len(table) else ""
        if sentence:
            parts.append(f"<p><b>{_escape(sentence)}</b></p>")
    if parts and students is not None:
        parts.append(f"<h3>{_escape(students.title)}</h3>" + html.table_html(students))
    return "".join(parts)


def build_report(tracking_uri: str, studies: list[str], out_dir: Path, *, name: str | None = None, ui_url: str | None = None) -> list[Path]:
    """Write ``<out_dir>/<name>.html`` and ``<name>-<table>.csv|.md|.tex`` for every section that applies.

    ``name`` defaults to the studies joined with "+"; ``ui_url`` is where run links
    point (default: the tracking server, else ``liser ui``'s http://127.0.0.1:5000).
    Raises :class:`StudyNotFound` for a study the store does not hold.
    """
    data, out_dir, name, ui = _open(tracking_uri, studies, out_dir, name, ui_url)
    written: list[Path] = []
    sections = [("Provenance", html.provenance_html(data, ui))]
    used = set()

    table2 = configuration_table(data)
    _write(table2, out_dir, name, written)
    sections.append(_section(table2))
    used.update(table2.data["run_id"])
    if has_methods(data):
        methods = methods_table(data)
        _write(methods, out_dir, name, written)
        sections.append(_section(methods))

    if has_ablations(data):
        table3 = ablation_table(data)
        if table3 is not None:
            _write(table3, out_dir, name, written)
            sections.append(_section(table3))
            used.update(table3.data["run_id"])

    if len(fraction_values(data)) >= 2:
        heading, inner, runs = _fraction_section(data, out_dir, name, written)
        sections.append((heading, inner))
        used.update(runs)

    for grid in knob_grids(data):
        _write(grid, out_dir, name, written)
        groups = grid.data[["study", "dataset", "config"]].drop_duplicates().itertuples(index=False)
        sections.append(_section(grid, [figures.knob_figure(grid.data, *group) for group in groups]))

    for study in data.names:
        if not is_search(data, study):
            continue
        history = optimisation_history(data, study)
        _write(history, out_dir, name, written)
        sections.append(_section(history, [figures.history_figure(history.data, study)]))
        imp = param_importances(data, study)
        _write(imp, out_dir, name, written)
        method = imp.data["method"].iloc[0] if len(imp.data) else ""
        sections.append(_section(imp, [figures.importance_figure(imp.data, study, method)] if len(imp.data) else []))

    confusion = confusion_matrices(data)
    if len(confusion.data):
        _write(confusion, out_dir, name, written)
        blocks = confusion.data.groupby(["dataset", "config"], sort=False)["n_folds"].first()
        figs = [
            figures.confusion_figure(confusion_matrix(confusion, ds, config), f"{config} on {ds} (test, summed over {n} folds)")
            for (ds, config), n in blocks.items()
        ]
        sections.append(("Confusion matrices", html.table_html(confusion) + html.figures_html(figs, side_by_side=True)))

    students = student_truth_table(data)
    if students is not None:
        _write(students, out_dir, name, written)
    teachers = _teachers_section(data, ui, students)
    if teachers:
        sections.insert(1, ("Teachers", teachers))
    sections.append(("MLflow runs behind the tables", html.runs_html(data, sorted(used), ui)))
    path = out_dir / f"{name}.html"
    path.write_text(html.page(_title(data), sections), encoding="utf-8")
    return [path, *written]


def build_fraction_curve(tracking_uri: str, studies: list[str], out_dir: Path, *, name: str | None = None, ui_url: str | None = None) -> list[Path]:
    """Figure 2 alone: ``<name>-fraction-curve.html`` and ``<name>-fraction-curve.csv|.md|.tex``."""
    data, out_dir, name, ui = _open(tracking_uri, studies, out_dir, name, ui_url)
    written: list[Path] = []
    heading, inner, runs = _fraction_section(data, out_dir, name, written)
    sections = [("Provenance", html.provenance_html(data, ui)), (heading, inner), ("MLflow runs behind the curve", html.runs_html(data, runs, ui))]
    path = out_dir / f"{name}-fraction-curve.html"
    path.write_text(html.page(f"Labeled fraction (Figure 2): {' + '.join(data.names)}", sections), encoding="utf-8")
    return [path, *written]


def answer_lines(tracking_uri: str, studies: list[str]) -> list[str]:
    """The answer a user ran the studies for, for the terminal: Table 2's rows and, where a hidden
    truth exists, the teachers against the no-dstl student on the unlabeled clips."""
    data = load_studies(tracking_uri, studies)
    table = configuration_table(data)
    lines = [f"{table.title} (test UAR over folds; against no-dstl: change, corrected t-test p):"]
    for row in table.data.itertuples(index=False):
        vs = f"  {row.uar_change_pct:+.1f} %, p = {row.uar_p:.3f}" if row.baseline and row.uar_change_pct == row.uar_change_pct else ""
        lines.append(f"  {row.dataset:<10} {row.config:<18} {fmt_pm(row.test_uar_mean, row.test_uar_std)}  ({row.n_folds} folds){vs}")
    students = student_truth_table(data)
    for s in data.studies:
        if s.teacher_runs and students is not None:
            sentence = truth_sentence(load_teacher_summary(tracking_uri, s.teacher_runs[0]), students)
            if sentence:
                lines.append(sentence)
                break
    return lines
