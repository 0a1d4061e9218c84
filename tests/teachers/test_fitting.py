"""The one fit driver: fold checks before any work, the leakage guard, the 80/20 split, the best-epoch loop,
skip-if-up-to-date and the summary file, exercised through a small real teacher."""

import json

import numpy as np
import pytest

from liser.corpora.manifest import Corpus, make_manifest
from liser.folds import Fold
from liser.teachers.fitting import (
    TeacherError, best_epoch_loop, check_folds, fit_folds, fold_entry, read_entries, split_fit_val, training_clips, write_summary,
)


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


def _corpus(tmp_path, speakers=("a", "b", "c", "d", "e"), per_speaker=4) -> Corpus:
    rows = [
        dict(clip_id=f"{s}{i}", path=f"{s}{i}.wav", speaker=s, label="ab"[i % 2], label_index=i % 2, duration=1.0, sample_rate=16000)
        for s in speakers for i in range(per_speaker)
    ]
    return Corpus("toy", tmp_path, ("a", "b"), make_manifest(rows))


def test_best_epoch_loop_keeps_the_best_earliest_epoch_and_stops_on_patience():
    scores = iter([(0.2, 0.3), (0.5, 0.4), (0.5, 0.4), (0.4, 0.9), (0.3, 0.1), (0.9, 0.9)])
    state = {"w": 0}

    def train_epoch(epoch):
        state["w"] = epoch
        return {"loss": 1.0 / epoch}

    best = best_epoch_loop(6, train_epoch, lambda: (s := next(scores), {"val_uar": s[0]}), lambda: dict(state), patience=3)
    assert best.epoch == 2 and best.state == {"w": 2} and best.score == (0.5, 0.4)  # a tie keeps the earlier epoch
    assert [r["epoch"] for r in best.history] == [1, 2, 3, 4, 5] and best.stopped_early  # 3 epochs without gain: stop
    assert best.row == best.history[1] and best.row["loss"] == 0.5 and "seconds" in best.row
    unlimited = best_epoch_loop(3, lambda e: {"loss": 0.0}, lambda: ((0.1,), {}), lambda: None, timed=False)
    assert len(unlimited.history) == 3 and unlimited.epoch == 1 and "seconds" not in unlimited.row


def test_training_clips_guard_the_fold(tmp_path):
    corpus = _corpus(tmp_path)
    train, table = training_clips(corpus, ["b", "a"], ["c", "d"], "toy teacher")
    assert train == ("a", "b") and set(table["speaker"]) == {"a", "b"} and len(table) == 8
    usable = corpus.manifest["clip_id"] != "a0"
    assert "a0" not in set(training_clips(corpus, ["a"], [], "toy teacher", usable=usable)[1]["clip_id"])
    with pytest.raises(TeacherError, match=r"leakage: speakers \['c'\]"):
        training_clips(corpus, ["a", "c"], ["c"], "toy teacher")
    with pytest.raises(TeacherError, match=r"speakers \['z'\] are not in corpus toy"):
        training_clips(corpus, ["z"], [], "toy teacher")


class _MajorityTeacher:
    """A real (if small) FoldTeacher: it learns each fold's majority class and writes it to a file."""

    kind, summary_file = "toy", "toy.json"

    def __init__(self, corpus, out_dir, cheat=False):
        self.corpus, self.out_dir, self.cheat, self.fits = corpus, out_dir, cheat, []
        self.identity, self.header = {"config": {"k": 1}}, {"note": "toy"}

    def up_to_date(self, k, fold, train):
        path = self.out_dir / f"fold{k}.json"
        record = json.loads(path.read_text()) if path.exists() else None
        return record if record and record["train_speakers"] == train else None

    def fit(self, k, fold, train, held_out):
        self.fits.append(k)
        _, table = training_clips(self.corpus, [*train, *held_out] if self.cheat else train, [] if self.cheat else held_out, "toy")
        fit, val = split_fit_val(table["label_index"].to_numpy(), 0.2, 0)
        majority = int(np.bincount(table["label_index"].to_numpy()[fit]).argmax())
        record = {
            "train_speakers": train, "fit_clips": table["clip_id"].iloc[fit].tolist(), "val_clips": table["clip_id"].iloc[val].tolist(),
            "best_epoch": 1, "val_uar": 0.5, "val_war": float((table["label_index"].to_numpy()[val] == majority).mean()), "majority": majority,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"fold{k}.json").write_text(json.dumps(record))
        return record

    def entry(self, k, record):
        return {"majority": record["majority"]}


def test_fit_folds_fits_skips_up_to_date_folds_and_merges_the_summary(tmp_path):
    corpus = _corpus(tmp_path)
    folds = [Fold(0, ("a", "b", "c"), ("d",), ("e",)), Fold(1, ("c", "d", "e"), ("a",), ("b",))]
    teacher, lines = _MajorityTeacher(corpus, tmp_path / "out"), []
    summary = fit_folds(teacher, corpus, folds, [0], tmp_path / "out", log=lines.append)
    assert teacher.fits == [0] and [e["fold"] for e in summary["folds"]] == [0] and summary["folds"][0]["majority"] in (0, 1)
    assert summary["kind"] == "toy" and summary["note"] == "toy" and summary["config"] == {"k": 1}
    assert lines[0].startswith("toy teacher fold 0: val UAR 0.500")
    summary = fit_folds(teacher, corpus, folds, None, tmp_path / "out", log=lines.append)
    assert teacher.fits == [0, 1] and [e["fold"] for e in summary["folds"]] == [0, 1]  # fold 0 was up to date
    assert "fold 0: up to date" in lines[1] and json.loads((tmp_path / "out" / "toy.json").read_text()) == summary


def test_fit_folds_refuses_a_fit_that_used_held_out_clips(tmp_path):
    corpus = _corpus(tmp_path)
    folds = [Fold(0, ("a", "b", "c"), ("d",), ("e",))]
    with pytest.raises(TeacherError, match=r"leakage: fold 0's toy teacher used clips of speakers \['d', 'e'\]"):
        fit_folds(_MajorityTeacher(corpus, tmp_path / "out", cheat=True), corpus, folds, None, tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "toy.json").exists()  # no summary claims the leaky fold
    with pytest.raises(TeacherError, match=r"folds \[4\] do not exist"):
        fit_folds(_MajorityTeacher(corpus, tmp_path / "o2"), corpus, folds, [4], tmp_path / "o2")
    assert not (tmp_path / "o2").exists()  # refused before any work
