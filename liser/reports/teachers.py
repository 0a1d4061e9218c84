"""The teacher diagnosis page: ``DIR/teachers.html`` (self-contained) and ``DIR/teachers*.csv``.

Draws what :func:`liser.teachers.diagnosis.diagnose` measured: a summary table, the
warnings, and per teacher its class distribution next to the labeled prior, its
confidence histogram and, where a hidden truth exists, its confusion matrix; then the
speech-video and between-fold agreement tables.
"""

from __future__ import annotations

import html as _html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from liser.reports import html
from liser.reports.figures import confusion_figure
from liser.errors import InputNotFound, TeacherError
from liser.teachers.diagnosis import (
    COLLAPSE_SHARE,
    CONFIDENCE_FACTOR,
    KAPPA_CHANCE,
    PRIOR_MAX_SHARE,
    Agreement,
    Diagnosis,
    TeacherStats,
    fmt,
)

PAGE = "teachers.html"
SUMMARY_CSV = "teachers.csv"
AGREEMENT_CSV = "teachers-agreement.csv"
SUMMARY_COLUMNS = ("kind", "teacher", "clips", "coverage", "valid_segments", "top_class", "top_share", "mean_confidence", "mean_entropy",
                   "val_uar", "truth_accuracy", "truth_uar", "warnings")


def _small(fig: go.Figure, title: str, **kw) -> go.Figure:
    fig.update_layout(title=title, template="plotly_white", height=320, width=520, margin=dict(l=50, r=20, t=50, b=60), title_font_size=12, **kw)
    return fig


def shares_figure(t: TeacherStats, prior: dict[str, float]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(t.shares), y=list(t.shares.values()), name="teacher's calls"))
    if prior:
        fig.add_trace(go.Bar(x=list(t.shares), y=[prior.get(c, 0.0) for c in t.shares], name="labeled prior"))
    return _small(fig, f"{t.name}: predicted classes over {t.covered} clips", yaxis_title="share of clips", barmode="group", legend=dict(orientation="h", y=-0.25))


def confidence_figure(t: TeacherStats) -> go.Figure:
    counts, edges = t.confidence_histogram()
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges) * 0.95))
    fig.add_vline(x=CONFIDENCE_FACTOR / len(t.classes), line_dash="dash", line_color="gray", annotation_text=f"{CONFIDENCE_FACTOR:g} x uniform")
    return _small(fig, f"{t.name}: confidence (max probability, eq. 5's weight); mean {t.mean_confidence:.2f}", xaxis_title="confidence", yaxis_title="clips")


def _confusion_frame(t: TeacherStats) -> pd.DataFrame:
    return pd.DataFrame(t.truth["confusion"], index=list(t.classes), columns=list(t.classes))


def summary_frame(diag: Diagnosis) -> pd.DataFrame:
    table = diag.table()
    return table[[c for c in ("file", *SUMMARY_COLUMNS) if c in table]]


def summary_lines(diag: Diagnosis) -> list[str]:
    """The terminal summary: one line per teacher file, then agreement, then the warnings."""
    head = f"{'teacher file':<22}{'clips':>7}{'cover':>7}{'valid':>7}  {'top class':<18}{'conf':>6}{'val UAR':>9}{'truth acc':>10}"
    lines = [f"teacher diagnosis of {diag.folder} (prior: {diag.prior_source}; hidden truth: {diag.truth_file or 'none'})", head]
    for t in diag.teachers:
        top, share = t.top_class
        lines.append(
            f"{t.file:<22}{t.clips:>7}{t.coverage:>7.0%}{t.valid_share:>7.0%}  {f'{top} {share:.0%}':<18}{t.mean_confidence:>6.2f}"
            f"{fmt(t.val_uar):>9}{fmt(t.truth.get('accuracy')):>10}"
        )
    for g in diag.speech_video:
        lines.append(f"speech-video agreement {g.a} / {g.b}: kappa {fmt(g.kappa, '.2f')} ({fmt(g.observed, '.0%')} agree, chance {fmt(g.chance, '.0%')}, {g.clips} clips)")
    if diag.between_folds:
        kappas = [g.kappa for g in diag.between_folds]
        lines.append(f"between the {len({g.a for g in diag.between_folds} | {g.b for g in diag.between_folds})} fold speech teachers: "
                     f"kappa {np.nanmin(kappas):.2f}..{np.nanmax(kappas):.2f} (mean {np.nanmean(kappas):.2f})")
    lines += [f"WARNING {w}" for w in diag.warnings]
    return lines


def _agreement_html(g: Agreement) -> str:
    head = f"<h3>{_html.escape(g.a)} (rows) against {_html.escape(g.b)} (columns)</h3>"
    stats = (f'<p>Cohen\'s kappa <strong>{fmt(g.kappa, ".2f")}</strong> on the {g.clips} clips both call in a shared class '
             f"(observed agreement {fmt(g.observed, '.0%')}, chance {fmt(g.chance, '.0%')}).</p>")
    return head + stats + g.table.to_html(border=0)


def _teacher_html(t: TeacherStats, diag: Diagnosis) -> str:
    top, share = t.top_class
    facts = [
        ("Kind", t.kind), ("Fold", "-" if t.fold is None else str(t.fold)),
        ("Clips", f"{t.covered} of {t.corpus_clips if t.corpus_clips is not None else t.clips} with a valid segment ({t.coverage:.0%})"),
        ("Valid segments", f"{t.valid_share:.0%}"), ("Most called", f"{top} ({share:.0%} of clips)"),
        ("Mean confidence", f"{t.mean_confidence:.3f} (uniform {1 / len(t.classes):.3f})"),
        ("Mean entropy", f"{fmt(t.mean_entropy)} nats (uniform {np.log(len(t.classes)):.3f})"),
        ("Own validation UAR / WAR", f"{fmt(t.val_uar)} / {fmt(t.val_war)}"),
    ]
    if t.truth:
        facts.append(("Hidden truth", f"accuracy {t.truth['accuracy']:.3f}, UAR {t.truth['uar']:.3f} on {t.truth['clips']} clips"))
    body = '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{_html.escape(v)}</dd>" for k, v in facts) + "</dl>"
    body += "".join(f'<p class="warn">⚠ {_html.escape(w)}</p>' for w in t.warnings)
    figs = [shares_figure(t, diag.prior), confidence_figure(t)]
    if t.truth.get("confusion"):
        figs.append(confusion_figure(_confusion_frame(t), f"{t.name} against the hidden truth"))
    return body + html.figures_html(figs, side_by_side=True)


def build_teacher_report(diag: Diagnosis, out_dir: str | Path | None = None, *, title: str | None = None) -> list[Path]:
    """Write the page and the CSVs into ``out_dir`` (default: the teacher folder); return their paths."""
    out_dir = Path(out_dir or diag.folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summary_frame(diag)
    warnings = diag.warnings
    intro = (
        f"<p>Teacher files in <code>{_html.escape(str(diag.folder))}</code>; unlabeled corpus "
        f"<code>{_html.escape(diag.unlabeled or 'not given (coverage is of the files own clips)')}</code>; class prior: {_html.escape(diag.prior_source)}.</p>"
        f'<p class="note">Per clip: the mean of its valid segment softmaxes (as the trainer averages a crop\'s segments), its argmax and its max. '
        f"Warnings: one class above {COLLAPSE_SHARE:.0%} of the clips while no labeled class exceeds {PRIOR_MAX_SHARE:.0%}; "
        f"mean confidence below {CONFIDENCE_FACTOR:g} x uniform; speech-video kappa below {KAPPA_CHANCE:g}.</p>"
    )
    truth = (f"<p>Hidden truth: <code>{_html.escape(str(diag.truth_file))}</code> (scored here only; never a training input).</p>"
             if diag.truth_file else "<p>No hidden-truth file for these clips, so no teacher is scored against a truth here (a real corpus has none).</p>")
    warn = "".join(f'<p class="warn">⚠ {_html.escape(w)}</p>' for w in warnings) or "<p>No warning: no teacher looks collapsed.</p>"
    sections = [("Summary", intro + truth + summary.to_html(border=0, index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")), ("Warnings", warn)]
    sections += [(f"Teacher {t.name} ({t.file})", _teacher_html(t, diag)) for t in diag.teachers]
    if diag.speech_video:
        sections.append(("Speech-video agreement on the shared classes", "".join(_agreement_html(g) for g in diag.speech_video)))
    if diag.between_folds:
        sections.append(("Agreement between the fold speech teachers", diag.agreement_table().query("pair == 'speech folds'").to_html(border=0, index=False, float_format=lambda v: f"{v:.3f}")))
    page = html.page(title or f"Teacher diagnosis: {diag.folder.name}", sections).replace("</style>", ".warn { color: #a40000; }\n</style>", 1)
    paths = [out_dir / PAGE, out_dir / SUMMARY_CSV, out_dir / AGREEMENT_CSV]
    paths[0].write_text(page, encoding="utf-8")
    diag.table().to_csv(paths[1], index=False)
    diag.agreement_table().to_csv(paths[2], index=False)
    return paths


def _spec_from_meta(files: dict, key: str) -> str | None:
    """The corpus spec the teacher files recorded when `liser teacher cache` wrote them."""
    from liser.targets import read_meta

    return next((str(spec) for by_fold in files.values() for p in by_fold.values() if (spec := read_meta(p).get(key))), None)


def report_folder(
    folder: str | Path, *, unlabeled: str | None = None, labeled: str | None = None, out_dir: str | Path | None = None, files: dict | None = None
) -> tuple[Diagnosis, list[Path]]:
    """Diagnose a teacher-output folder and write its page; corpora default to the ones the files recorded.

    ``unlabeled`` / ``labeled`` are corpus specs (``avclips:PATH``, ``ravdess:PATH``). The
    hidden truth is looked up next to the unlabeled corpus (only the synthetic one has it).
    """
    from liser.corpora import load_corpus
    from liser.teachers.diagnosis import diagnose, labeled_prior, speech_video_files
    from liser.teachers.truth import find_truth

    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFound(f"{folder}: not a folder of teacher-output files; give the --out folder of `liser teacher cache`")
    files = files if files is not None else speech_video_files(folder)
    unlabeled = unlabeled or _spec_from_meta(files, "unlabeled")
    labeled = labeled or _spec_from_meta(files, "labeled")
    ids = truth = prior = None
    if unlabeled:
        corpus = load_corpus(unlabeled)
        ids, truth = corpus.manifest["clip_id"].astype(str).tolist(), find_truth(corpus.root)
    if labeled:
        lab = load_corpus(labeled)
        if not lab.labeled:
            raise TeacherError(f"--labeled {labeled}: this corpus has no labels; give the labeled corpus the teachers were fitted on")
        prior = labeled_prior(lab.manifest, lab.classes)
    diag = diagnose(folder, unlabeled_ids=ids, unlabeled=unlabeled, prior=prior, prior_source=f"the labeled corpus {labeled}" if labeled else None,
                    truth_file=truth, files=files)
    return diag, build_teacher_report(diag, out_dir)
