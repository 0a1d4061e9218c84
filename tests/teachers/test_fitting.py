"""What the per-fold teacher fits share: fold checks before any work, the 80/20 split, the summary file."""

import json

import numpy as np
import pytest

from liser.corpora.manifest import Corpus, make_manifest
from liser.folds import Fold
from liser.teachers.fitting import TeacherError, check_folds, fold_entry, read_entries, split_fit_val, write_summary


def test_unknown_and_leaky_folds_are_refused_before_any_work():
    folds = [Fold(0, ("a", "b"), ("c",), ("d",)), Fold(1, ("a", "c"), ("c",), ("b",))]
    by_index, wanted = check_folds(folds[:1], None)
    assert wanted == [0] and by_index[0] is folds[0]
    with pytest.raises(TeacherError, match=r"folds \[3\] do not exist"):
        check_folds(folds, [0, 3])
    with pytest.raises(TeacherError, match=r"leakage: fold 1 lists speakers \['c'\]"):
        check_folds(folds, None)


def test_split_is_class_stratified_and_keeps_a_fit_clip_per_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3])
    fit, val = split_fit_val(labels, 0.2, seed=0)
    assert sorted(np.concatenate([fit, val])) == list(range(len(labels))) and not set(fit) & set(val)
    assert [int((labels[val] == c).sum()) for c in range(4)] == [2, 1, 1, 0]  # 20 %, at least one, never the only clip
    np.testing.assert_array_equal(split_fit_val(labels, 0.2, seed=0)[1], val)


def test_summary_merges_folds_across_runs_and_restarts_for_other_teachers(tmp_path):
    manifest = make_manifest([dict(clip_id="x", path="x.wav", speaker="a", label="l", label_index=0, duration=1.0, sample_rate=16000)])
    corpus = Corpus("toy", tmp_path, ("l",), manifest)
    path = tmp_path / "teachers.json"
    record = {"train_speakers": ["a"], "best_epoch": 3, "val_uar": 0.5, "val_war": 0.6}
    fold = Fold(0, ("a",), ("b",), ("c",))
    written = write_summary(path, "speech", corpus, {0: fold_entry(0, fold, record, dir="fold0")}, backbone="tiny")
    assert json.loads(path.read_text()) == written and written["folds"][0]["val_speakers"] == ["b"] and written["folds"][0]["dir"] == "fold0"
    same = {"manifest_hash": corpus.manifest_hash(), "backbone": "tiny"}
    assert list(read_entries(path, same)) == [0]  # a later run adds its folds to these
    assert read_entries(path, {**same, "backbone": "other"}) == {}  # another backbone's teachers: start afresh
    assert read_entries(tmp_path / "none.json", same) == {}
