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


def student_truth_table(data: StudyData) -> Table | None:
    """Per study, configuration and labeled fraction: the students' hidden-truth accuracy and UAR on the unlabeled clips."""
    folds = with_defaults(data.folds)
    if METRIC not in folds or folds[METRIC].isna().all():
        return None
    folds = folds[folds[METRIC].notna()]
    keys = ["study", "dataset", "config", "labeled_fraction"]
    rows = []
    for key, g in folds.groupby(keys, sort=False):
        rows.append({**dict(zip(keys, key)), "n_folds": len(g),
                     "truth_accuracy_mean": g[METRIC].mean(), "truth_accuracy_std": g[METRIC].std(ddof=1) if len(g) > 1 else np.nan,
                     "truth_uar_mean": g["unlabeled_truth_uar"].mean(), "test_uar_mean": g["test_uar"].mean()})
    tidy = in_paper_order(pd.DataFrame(rows), data, "labeled_fraction")
    display = pd.DataFrame({
        "study": tidy["study"], "configuration": tidy["config"], "labeled fraction": tidy["labeled_fraction"].map(lambda v: f"{v:g}"),
        "folds": tidy["n_folds"],
        "accuracy on the unlabeled clips": [fmt_pm(m, s) for m, s in zip(tidy["truth_accuracy_mean"], tidy["truth_accuracy_std"])],
        "UAR on the unlabeled clips": tidy["truth_uar_mean"].map(lambda v: f"{v:.3f}"),
        "test UAR": tidy["test_uar_mean"].map(lambda v: f"{v:.3f}"),
    })
    note = ("Each fold's best-validation student, scored after training on every unlabeled clip against the hidden truth "
            "(the speech emotion; the mean of windows 1 s apart). A teacher can teach where it is right and the no-dstl student is not.")
    return Table("students-on-unlabeled", "Students on the teachers' clips (hidden truth)", tidy, display, note)


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
    return f"Hidden-truth accuracy on the unlabeled clips: no-dstl student {level:.3f}{within}; teachers {', '.join(parts)}."
