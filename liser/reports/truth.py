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


def student_truth_table(data: StudyData) -> Table | None:
    """Per study, configuration and labeled fraction: the students' hidden-truth accuracy and UAR on the unlabeled clips."""
    folds = with_defaults(data.folds)
    if METRIC not in folds or folds[METRIC].isna().all():
        return None
    folds = folds[folds[METRIC].notna()]
    keys = ["study", "dataset", "config", "labeled_fraction"]
    rows = []
    for key, g in folds.groupby(keys, sort=False):
        row = {**dict(zip(keys, key)), "n_folds": len(g), "test_uar_mean": g["test_uar"].mean()}
        for name, metric in (("truth", METRIC), *((f"{h}_truth", f"unlabeled_truth_{h}_accuracy") for h in HEADS)):
            values = g[metric].dropna() if metric in g else pd.Series(dtype=float)
            row[f"{name}_accuracy_mean"] = values.mean() if len(values) else np.nan
            row[f"{name}_accuracy_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        row["truth_uar_mean"] = g["unlabeled_truth_uar"].mean()
        rows.append(row)
    tidy = in_paper_order(pd.DataFrame(rows), data, "labeled_fraction")
    display = pd.DataFrame({
        "study": tidy["study"], "configuration": tidy["config"], "labeled fraction": tidy["labeled_fraction"].map(lambda v: f"{v:g}"),
        "folds": tidy["n_folds"],
        "accuracy on the unlabeled clips": [fmt_pm(m, s) for m, s in zip(tidy["truth_accuracy_mean"], tidy["truth_accuracy_std"])],
        "UAR on the unlabeled clips": tidy["truth_uar_mean"].map(lambda v: f"{v:.3f}"),
        **{label: [fmt_pm(m, sd) for m, sd in zip(tidy[f"{h}_truth_accuracy_mean"], tidy[f"{h}_truth_accuracy_std"])]
           for h, label in HEADS.items() if tidy[f"{h}_truth_accuracy_mean"].notna().any()},
        "test UAR": tidy["test_uar_mean"].map(lambda v: f"{v:.3f}"),
    })
    note = ("Each fold's best-validation student, scored after training on every unlabeled clip against the hidden truth "
            "(the speech emotion; the mean of windows 1 s apart). A teacher can teach where it is right and the no-dstl student is not. "
            "The accuracy columns score g_sup, the head that predicts. Where a configuration distils, its distillation heads are "
            "scored too: g_sd (eq. 2, fit to the speech teacher) against the speech emotion, g_vd (eq. 3, fit to the video teacher) "
            "against the clip's FERV39k class. A g_sd near its teacher with g_sup far below says the knowledge reached the student's "
            "embedding but not its predicting head, which learns from the acted labels only.")
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
    return f"Hidden-truth accuracy on the unlabeled clips: no-dstl student {level:.3f}{within}; teachers {', '.join(parts)}.{_heads_sentence(students)}"


def _heads_sentence(students: Table) -> str:
    """Where the distilled knowledge landed, with all labels: the distillation heads against g_sup of the same students."""
    full = students.data[students.data["labeled_fraction"] == 1.0]
    parts = []
    for h in HEADS:
        g = full.dropna(subset=[f"{h}_truth_accuracy_mean"]) if f"{h}_truth_accuracy_mean" in full else full.iloc[:0]
        if len(g):
            parts.append(f"g_{h} {g[f'{h}_truth_accuracy_mean'].mean():.3f} (g_sup {g['truth_accuracy_mean'].mean():.3f}; {', '.join(g['config'])})")
    return f" Distilling students' heads on the same clips: {'; '.join(parts)}." if parts else ""
