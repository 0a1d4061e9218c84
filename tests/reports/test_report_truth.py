"""The one-line answer beside the Teachers table: teachers against the no-dstl student, with its fold spread."""

from __future__ import annotations

import pandas as pd

from liser.reports.tables import Table
from liser.reports.truth import truth_sentence


def _students(mean: float, std: float) -> Table:
    data = pd.DataFrame([
        {"config": "no-dstl", "labeled_fraction": 1.0, "truth_accuracy_mean": mean, "truth_accuracy_std": std},
        {"config": "no-dstl", "labeled_fraction": 0.25, "truth_accuracy_mean": 0.9, "truth_accuracy_std": 0.0},  # not the reference
    ])
    return Table("students-on-unlabeled", "Students", data, data, "")


def _teachers(**acc: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"kind": kind, "file": f"{kind}{i}.npz", "truth_accuracy": a} for kind, values in acc.items() for i, a in enumerate(values)])


def test_a_gap_inside_the_students_fold_spread_is_level():
    """The demo's case: speech teachers 0.157 against students at 0.151 ± 0.017 are level, not above; video is above."""
    line = truth_sentence(_teachers(speech=[0.150, 0.160, 0.160], video=[0.870]), _students(0.151, 0.017))
    assert line == ("Hidden-truth accuracy on the unlabeled clips: no-dstl student 0.151 ± 0.017 over folds; "
                    "teachers speech 0.157 (level with it, mean of 3 files), video 0.870 (above it).")


def test_below_by_more_than_the_spread_and_one_fold_compares_strictly():
    assert "speech 0.100 (below it" in truth_sentence(_teachers(speech=[0.10]), _students(0.151, 0.017))
    one_fold = truth_sentence(_teachers(speech=[0.152], video=[0.151]), _students(0.151, float("nan")))
    assert "student 0.151; teachers speech 0.152 (above it), video 0.151 (level with it)." in one_fold


def test_no_line_without_a_truth_or_a_no_dstl_reference():
    assert truth_sentence(_teachers(speech=[0.5]), None) == ""
    assert truth_sentence(pd.DataFrame({"kind": ["speech"], "truth_accuracy": [float("nan")]}), _students(0.1, 0.0)) == ""
    other = Table("s", "S", pd.DataFrame([{"config": "vid-dstl", "labeled_fraction": 1.0, "truth_accuracy_mean": 0.2, "truth_accuracy_std": 0.0}]), pd.DataFrame(), "")
    assert truth_sentence(_teachers(speech=[0.5]), other) == ""


def test_the_distillation_heads_are_set_beside_g_sup_of_the_same_students():
    """Where the knowledge landed: sp-dstl's g_sd beside its g_sup; a g_vd that gives one class to
    every clip is named as having learned the teacher's prior (the demo's case: neutral on 100 %)."""
    students = _students(0.127, 0.0)
    students.data = pd.concat([students.data, pd.DataFrame([
        {"config": "sp-dstl", "labeled_fraction": 1.0, "truth_accuracy_mean": 0.147, "truth_accuracy_std": 0.0,
         "sd_truth_accuracy_mean": 0.297, "sd_truth_uar_mean": 0.21, "sd_truth_top_share_mean": 0.5},
        {"config": "vid-dstl", "labeled_fraction": 1.0, "truth_accuracy_mean": 0.133, "truth_accuracy_std": 0.0,
         "vd_truth_accuracy_mean": 0.42, "vd_truth_uar_mean": 1 / 7, "vd_truth_top_share_mean": 1.0},
        {"config": "sp-dstl", "labeled_fraction": 0.25, "truth_accuracy_mean": 0.1, "truth_accuracy_std": 0.0, "sd_truth_accuracy_mean": 0.9},
    ])], ignore_index=True)
    line = truth_sentence(_teachers(speech=[0.313]), students)
    assert line.endswith("speech 0.313 (above it). Distilling students' heads on the same clips: "
                         "g_sd 0.297, UAR 0.210 (g_sup 0.147; sp-dstl); "
                         "g_vd 0.420, UAR 0.143, one class on 100% of the clips: the teacher's prior, not its calls (g_sup 0.133; vid-dstl).")
    only_sd = students.data[students.data["config"] != "vid-dstl"]
    assert "g_vd" not in truth_sentence(_teachers(speech=[0.313]), Table("s", "S", only_sd, only_sd, ""))  # no configuration trained it
