"""The training loop end to end on the generated corpus (tiny sizes, 1-2 epochs)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from liser.configs import make_config
from liser.evaluate import evaluate
from liser.data import CorpusData, load_corpus_data, load_teachers, teachers_for_fold
from liser.folds import make_folds
from liser.targets import TeacherFileError, TeacherOutputs, find_teacher_files
from liser.train import TrainingDiverged, load_student, steps_per_epoch, train, train_fold


@pytest.fixture(scope="module")
def labeled(synth_root):
    """The synthetic RAVDESS corpus cut to statement 1, repetition 1: 15 clips per actor, for speed."""
    data = load_corpus_data(f"ravdess:{synth_root / 'ravdess'}", progress=False)
    m = data.corpus.manifest
    small = replace(data.corpus, manifest=m[(m["statement"] == 1) & (m["repetition"] == 1)].reset_index(drop=True))
    return CorpusData(small, data.features)


@pytest.fixture(scope="module")
def unlabeled(synth_root):
    return load_corpus_data(f"avclips:{synth_root / 'avclips'}", progress=False)


@pytest.fixture(scope="module")
def teachers(synth_root, labeled):
    """The oracle teacher outputs, the same for every fold."""
    loaded = load_teachers(find_teacher_files(synth_root / "oracle-teachers"), labeled.corpus.classes)
    return {kind: by_fold[None] for kind, by_fold in loaded.items()}


@pytest.fixture(scope="module")
def folds(labeled):
    return make_folds(labeled.table["speaker"].unique(), 5, seed=0)


def test_no_dstl_fold_uses_only_its_speakers(labeled, folds):
    fold = folds[0]
    result = train_fold(make_config("no-dstl", epochs=2), labeled, fold, progress=False)
    table = labeled.table
    assert result.counts == {
        "train": int(table["speaker"].isin(fold.train).sum()),
        "val": int(table["speaker"].isin(fold.val).sum()),
        "test": int(table["speaker"].isin(fold.test).sum()),
        "parameters": 105_143,  # the paper's 105K student (K_S = 8, K_V = 7)
        "steps_per_epoch": -(-int(table["speaker"].isin(fold.train).sum()) // 25),  # one pass over the labeled clips
    }
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(np.isfinite(h["loss_sup"]) and h["loss_sd"] == 0 for h in result.history)
    assert 0 <= result.test.uar <= 1 and result.test.n == result.counts["test"]
    assert result.test.confusion.sum() == result.counts["test"]
    assert result.best_epoch in (1, 2)
    assert result.val.uar == max(h["val_uar"] for h in result.history)  # the best-val checkpoint was restored
    # the student the result holds is that checkpoint: it scores the test clips as reported
    test = table[table["speaker"].isin(fold.test)]
    again = evaluate(result.student(), [labeled.features.features[c] for c in test["clip_id"]], test["label_index"].to_numpy(), 8)
    assert again.uar == result.test.uar and (again.confusion == result.test.confusion).all()


def test_distillation_fold_reads_teacher_targets(labeled, unlabeled, teachers, folds):
    result = train_fold(make_config("conf-vid-sp-dstl", epochs=1), labeled, folds[1], unlabeled, teachers, progress=False)
    row = result.history[0]
    assert row["loss_sd"] > 0 and row["loss_vd"] > 0
    assert result.counts["unlabeled"] == len(unlabeled.table)
    assert result.counts["unlabeled_missing_speech"] == 0


def test_an_epoch_over_the_augmented_set_sees_every_unlabeled_clip(labeled, unlabeled, teachers, folds):
    """Section 3.6: the training set is augmented with the unlabeled clips, so at a small labeled
    fraction an epoch takes ceil(N_U / N_u) steps, the labeled batches repeating."""
    kw = dict(epochs=1, labeled_fraction=0.25, batch_size=4)
    short = train_fold(make_config("vid-sp-dstl", unlabeled_batch_size=1, **kw), labeled, folds[1], unlabeled, teachers, progress=False)
    long = train_fold(make_config("vid-sp-dstl", epoch_over="augmented", unlabeled_batch_size=1, **kw), labeled, folds[1], unlabeled, teachers, progress=False)
    n_l, n_u = short.counts["train"], long.counts["unlabeled"]
    assert short.counts["steps_per_epoch"] == -(-n_l // 4) < n_u == long.counts["steps_per_epoch"]
    assert len(long.history) == 1 and np.isfinite(long.history[0]["loss_sd"])
    base = train_fold(make_config("no-dstl", epoch_over="augmented", **kw), labeled, folds[1], progress=False)
    assert base.counts["steps_per_epoch"] == -(-n_l // 4)  # nothing to augment with: one pass over the labels
    assert steps_per_epoch(make_config("sp-dstl", epoch_over="augmented"), 3, 0) == 3


def test_two_stage_distils_then_fine_tunes(labeled, unlabeled, teachers, folds):
    result = train_fold(make_config("two-stage-train", epochs=1, pretrain_epochs=1), labeled, folds[2], unlabeled, teachers, progress=False)
    stages = [(h["stage"], h["loss_sup"] > 0, h["loss_sd"] > 0) for h in result.history]
    assert stages == [("distil", False, True), ("train", True, False)]


def test_labeled_fraction_is_stratified(labeled, folds):
    result = train_fold(make_config("no-dstl", epochs=1, labeled_fraction=0.5), labeled, folds[0], progress=False)
    full = labeled.table[labeled.table["speaker"].isin(folds[0].train)]
    per_class = full["label_index"].value_counts()
    assert result.counts["train"] == sum(max(1, round(0.5 * n)) for n in per_class)


def test_missing_teacher_clips_are_counted_not_fatal(labeled, unlabeled, teachers, folds, tmp_path):
    video = teachers["video"]
    keep = {c: video.segments(c)[0] for c in video.clip_ids[: len(video.clip_ids) // 2]}
    partial = {"video": TeacherOutputs.from_segments("video", video.classes, keep)}
    result = train_fold(make_config("vid-dstl", epochs=1), labeled, folds[0], unlabeled, partial, progress=False)
    assert result.counts["unlabeled"] == len(keep)
    assert result.counts["unlabeled_dropped_no_teacher"] == len(unlabeled.table) - len(keep)


def test_teacher_files_must_match_kind_and_classes(synth_root, labeled, tmp_path):
    with pytest.raises(TeacherFileError, match="holds video teacher outputs"):
        load_teachers({"speech": {None: synth_root / "oracle-teachers" / "video.npz"}}, labeled.corpus.classes)
    wrong = TeacherOutputs.from_segments("speech", ("a", "b"), {"x": np.array([[0.5, 0.5]])}).save(tmp_path / "speech.npz")
    with pytest.raises(TeacherFileError, match="classes"):
        load_teachers({"speech": {None: wrong}}, labeled.corpus.classes)


def test_per_fold_teachers_are_picked_and_leaks_refused(labeled, folds, tmp_path):
    classes = labeled.corpus.classes
    probs = {"clip": np.full((2, len(classes)), 1 / len(classes))}
    for k in (0, 1):
        meta = {"fold": k, "train_speakers": list(folds[k].train)}
        TeacherOutputs.from_segments("speech", classes, probs, meta=meta).save(tmp_path / f"speech-fold{k}.npz")
    files = find_teacher_files(tmp_path)
    assert set(files["speech"]) == {0, 1}
    loaded = load_teachers(files, classes)
    assert teachers_for_fold(loaded, folds[1])["speech"].meta["fold"] == 1
    with pytest.raises(TeacherFileError, match="no speech teacher outputs for fold 2"):
        teachers_for_fold(loaded, folds[2])
    leaky = {"speech": {None: loaded["speech"][0]}}  # fold 0's teacher trained on fold 1's test speakers
    with pytest.raises(TeacherFileError, match="validation or test speakers"):
        teachers_for_fold(leaky, folds[1])


def test_nan_features_stop_the_fold_with_a_clear_error(labeled, folds):
    feats = dict(labeled.features.features)
    first = labeled.table["clip_id"][labeled.table["speaker"].isin(folds[0].train)].iloc[0]
    feats[first] = np.full_like(feats[first], np.nan)
    broken = CorpusData(labeled.corpus, type(labeled.features)(feats, labeled.features.skipped))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        train_fold(make_config("no-dstl", epochs=1, batch_size=1000), broken, folds[0], progress=False)


def test_train_writes_results_and_checkpoints_and_resumes(labeled, folds, tmp_path):
    cfg = make_config("no-dstl", epochs=1)
    lines = []
    results = train(cfg, labeled, folds, [0, 1], tmp_path, progress=False, log=lines.append)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [f["fold"] for f in saved["folds"]] == [0, 1]
    assert saved["summary"]["n_folds"] == 2
    assert saved["summary"]["test_uar_mean"] == pytest.approx(np.mean([f["test"]["uar"] for f in saved["folds"]]))
    assert saved["labeled"]["manifest_hash"] == labeled.corpus.manifest_hash()
    model, record = load_student(saved["folds"][0]["checkpoint"])  # loads with weights_only=True
    assert record["fold"] == 0 and record["classes"] == list(labeled.corpus.classes)
    assert model(torch.zeros(1, 64, 94)).sup.shape == (1, 8)
    assert any("test UAR" in line for line in lines)

    lines.clear()
    again = train(cfg, labeled, folds, [0, 1], tmp_path, progress=False, log=lines.append)
    assert sum("reused" in line for line in lines) == 2  # nothing retrained
    assert again["summary"] == results["summary"]
    with pytest.raises(ValueError, match="another configuration"):
        train(make_config("no-dstl", epochs=2), labeled, folds, [0], tmp_path, progress=False, log=lines.append)
