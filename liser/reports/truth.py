"""Students beside their teachers on the unlabeled clips, where a hidden truth exists.

A teacher's hidden-truth accuracy says little on its own: distillation (eq. 4) can only
help where the teacher is right on clips the student gets wrong. So the Teachers section
sets each trained student's accuracy on the same unlabeled clips (its fold runs'
``unlabeled_truth_accuracy``, scored after training, never a training input) beside the
teachers'. Only the synthetic corpus has a truth; on real data the table is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from liser.reports.runs import StudyData
from liser.reports.tables import Table, fmt_pm, in_paper_order, with_defaults

METRIC = "unlabeled_truth_accuracy"
# The distillation heads, scored where a configuration trained them (liser.studies.trial).
HEADS = {"sd": "g_sd (speech distillation head) on those clips", "vd": "g_vd (video distillation head, FERV39k classes)"}
# A head that gives one class to at least this share of the clips has learned its teacher's
# class prior, not its calls: its accuracy is that class's share of the truth, its UAR chance.
COLLAPSED_SHARE = 0.9


def _metric(head: str, what: str) -> str:
    return f"unlabeled_truth_{head + '_' if head else ''}{what}"


def student_truth_table(data: StudyData) -> Table | None:
    """Per study, configuration and labeled fraction: the students' hidden-truth accuracy and UAR on the
    unlabeled clips, for g_sup and for each distillation head the configuration trained."""
    folds = with_defaults(data.folds)
    if METRIC not in folds or folds[METRIC].isna().all():
        return None
    folds = folds[folds[METRIC].notna()]
    keys = ["study", "dataset", "config", "labeled_fraction"]
    rows = []
    for key, g in folds.groupby(keys, sort=False):
        row = {**dict(zip(keys, key)), "n_folds": len(g), "test_uar_mean": g["test_uar"].mean()}
        for head, name in (("", "truth"), *((h, f"{h}_truth") for h in HEADS)):
            acc = g[_metric(head, "accuracy")].dropna()  # every fold metric is a column (reports.runs.FOLD_METRICS)
            row[f"{name}_accuracy_mean"] = acc.mean() if len(acc) else np.nan
            row[f"{name}_accuracy_std"] = acc.std(ddof=1) if len(acc) > 1 else np.nan
            for what in ("uar", "top_share"):
                row[f"{name}_{what}_mean"] = g[_metric(head, what)].mean()  # NaN where no fold logged it
        rows.append(row)
    tidy = in_paper_order(pd.DataFrame(rows), data, "labeled_fraction")
    display = pd.DataFrame({
        "study": tidy["study"], "configuration": tidy["config"], "labeled fraction": tidy["labeled_fraction"].map(lambda v: f"{v:g}"),
        "folds": tidy["n_folds"],
        "accuracy on the unlabeled clips": [fmt_pm(m, s) for m, s in zip(tidy["truth_accuracy_mean"], tidy["truth_accuracy_std"])],
        "UAR on the unlabeled clips": tidy["truth_uar_mean"].map(lambda v: f"{v:.3f}"),
        **{label: [_head_cell(r, h) for _, r in tidy.iterrows()] for h, label in HEADS.items() if tidy[f"{h}_truth_accuracy_mean"].notna().any()},
        "test UAR": tidy["test_uar_mean"].map(lambda v: f"{v:.3f}"),
    }).set_index(["study", "configuration", "labeled fraction"])  # named row keys, like the other tables (no bare 0..n column)
    note = ("Each fold's best-validation student, scored after training on every unlabeled clip against the hidden truth "
            "(the speech emotion; the mean of windows 1 s apart). A teacher can teach where it is right and the no-dstl student is not. "
            "The accuracy columns score g_sup, the head that predicts. Where a configuration distils, its distillation heads are "
            "scored too: g_sd (eq. 2, fit to the speech teacher) against the speech emotion, g_vd (eq. 3, fit to the video teacher) "
            "against the clip's FERV39k class, each as accuracy, UAR and the share of clips given its most called class. "
            f"A head that gives one class to {COLLAPSED_SHARE:.0%} or more of the clips has learned its teacher's class prior, "
            "not its calls: its accuracy is that class's share, its UAR chance.")
    return Table("students-on-unlabeled", "Students on the teachers' clips (hidden truth)", tidy, display, note)


def _head_cell(row: pd.Series, head: str) -> str:
    acc = fmt_pm(row[f"{head}_truth_accuracy_mean"], row[f"{head}_truth_accuracy_std"])
    if not np.isfinite(row[f"{head}_truth_accuracy_mean"]):
        return acc
    share = row[f"{head}_truth_top_share_mean"]
    top = f", one class on {share:.0%}" if np.isfinite(share) else ""
    return f"{acc} (UAR {row[f'{head}_truth_uar_mean']:.3f}{top})"


def truth_sentence(teachers: pd.DataFrame, students: Table | None) -> str:
    """One line a reader can act on: each teacher's hidden-truth accuracy against the no-dstl student's, with all labels.

    A teacher is "above" or "below" the student only by more than the no-dstl students'
    spread over folds (their std; none with one fold): a gap inside it is "level with it",
    since a teacher that no fold's student clearly trails has little to teach (eq. 4).
    """
    if students is None or "truth_accuracy" not in teachers or teachers["truth_accuracy"].isna().all():
        return ""
    base = students.data[(students.data["config"] == "no-dstl") & (students.data["labeled_fraction"] == 1.0)]
    if base.empty:
        return ""
    level = float(base["truth_accuracy_mean"].mean())
    spread = float(np.nan_to_num(base["truth_accuracy_std"].mean()))
    parts = []
    by = "kind" if "kind" in teachers else "file"
    for kind, g in teachers.dropna(subset=["truth_accuracy"]).groupby(by, sort=False):
        acc = float(g["truth_accuracy"].mean())
        files = f", mean of {len(g)} files" if len(g) > 1 else ""
        side = "above" if acc - level > spread else "below" if level - acc > spread else "level with"
        parts.append(f"{kind} {acc:.3f} ({side} it{files})")
    within = f" ± {spread:.3f} over folds" if spread > 0 else ""
    return f"Hidden-truth accuracy on the unlabeled clips: no-dstl student {level:.3f}{within}; teachers {', '.join(parts)}.{_heads_sentence(students)}"


def _heads_sentence(students: Table) -> str:
    """Where the distilled knowledge landed, with all labels: the distillation heads against g_sup of the same
    students, and a head that gives one class to nearly every clip named as having learned only the prior."""
    full = students.data[students.data["labeled_fraction"] == 1.0]
    parts = []
    for h in HEADS:
        g = full.dropna(subset=[f"{h}_truth_accuracy_mean"]) if f"{h}_truth_accuracy_mean" in full else full.iloc[:0]
        if not len(g):
            continue
        uar = g[f"{h}_truth_uar_mean"].mean() if f"{h}_truth_uar_mean" in g else np.nan
        share = g[f"{h}_truth_top_share_mean"].mean() if f"{h}_truth_top_share_mean" in g else np.nan
        scores = f"g_{h} {g[f'{h}_truth_accuracy_mean'].mean():.3f}" + (f", UAR {uar:.3f}" if np.isfinite(uar) else "")
        collapsed = f", one class on {share:.0%} of the clips: the teacher's prior, not its calls" if np.isfinite(share) and share >= COLLAPSED_SHARE else ""
        parts.append(f"{scores}{collapsed} (g_sup {g['truth_accuracy_mean'].mean():.3f}; {', '.join(g['config'])})")
    return f" Distilling students' heads on the same clips: {'; '.join(parts)}." if parts else ""
