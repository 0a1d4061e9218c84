"""The teacher workflow end to end, through the CLI: fit per fold -> cache -> train from the cache."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from liser.cli import main
from liser.targets import TeacherOutputs
from liser.teachers.truth import clip_predictions



def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def teacher_dirs(synth_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    speech, out = root / "speech", root / "out"
    code, text = run(
        "teacher", "speech", "fit", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--folds", "0,1",
        "--backbone", "tiny-synth", "--epochs", 1, "--set", "threads=1", "--out", speech, "-q",
    )
    assert code == 0, text
    code, text = run(
        "teacher", "cache", "--unlabeled", f"avclips:{synth_root / 'avclips'}", "--speech", speech,
        "--video", "fer", "--detector", "synthetic", "--out", out, "-q",
    )
    assert code == 0, text
    return speech, out, text


def test_one_speech_teacher_per_fold_never_sees_its_test_speakers(teacher_dirs, synth_root):
    speech, _, _ = teacher_dirs
    summary = json.loads((speech / "teachers.json").read_text())
    folds = {f["index"]: f for f in json.loads((speech / "folds.json").read_text())["folds"]}
    assert [e["fold"] for e in summary["folds"]] == [0, 1]
    for entry in summary["folds"]:
        fold = folds[entry["fold"]]
        assert sorted(entry["train_speakers"]) == sorted(fold["train"])
        assert not set(entry["train_speakers"]) & (set(fold["test"]) | set(fold["val"]))


def test_cache_writes_teacher_files_with_teacher_metrics(teacher_dirs, synth_root):
    _, out, text = teacher_dirs
    assert sorted(p.name for p in out.glob("*.npz")) == ["speech-fold0.npz", "speech-fold1.npz", "video.npz"]
    speech0 = TeacherOutputs.load(out / "speech-fold0.npz")
    assert speech0.meta["fold"] == 0 and 0 <= speech0.meta["val_uar"] <= 1 and speech0.meta["cache"]["computed"] == 10
    video = TeacherOutputs.load(out / "video.npz")
    assert video.kind == "video" and len(video.clip_ids) == 10 and video.valid.any()
    assert "speech fold 0: ran on 10 clips" in text
    # the synthetic corpus keeps a hidden truth next to avclips/: each file says how often its teacher is right there
    truth = pd.read_csv(synth_root / "avclips_truth.csv").set_index("clip_id")
    for teacher, column in ((speech0, "emotion"), (video, "ferv_class")):
        scored = teacher.meta["hidden_truth"]
        calls = clip_predictions(teacher)
        right = [teacher.classes[p] == truth.loc[c, column] for c, p in calls.items()]
        assert scored["column"] == column and scored["clips"] == len(calls) and scored["accuracy"] == pytest.approx(np.mean(right))
    assert "teacher diagnosis of" in text and "truth acc" in text and "speech-video agreement" in text and "teachers.html" in text


def test_second_cache_run_does_no_teacher_work(teacher_dirs, synth_root):
    speech, out, _ = teacher_dirs
    code, text = run(
        "teacher", "cache", "--unlabeled", f"avclips:{synth_root / 'avclips'}", "--speech", speech,
        "--video", "fer", "--detector", "synthetic", "--out", out, "-q",
    )
    assert code == 0, text
    assert "speech fold 0: ran on 0 clips, 10 from cache" in text and "video: ran on 0 clips, 10 from cache" in text


def test_student_trains_from_cached_teachers(teacher_dirs, synth_root, tmp_path):
    _, out, _ = teacher_dirs
    args = ("train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--unlabeled", f"avclips:{synth_root / 'avclips'}",
            "--teachers", out, "--config", "vid-sp-dstl", "--epochs", 1, "-q")
    code, text = run(*args, "--fold", 1, "--out", tmp_path / "a")
    assert code == 0, text
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["folds"][0]["history"][0]["loss_sd"] > 0 and results["teachers"]["speech"]["1"]["meta"]["fold"] == 1
    code, text = run(*args, "--fold", 2, "--out", tmp_path / "b")
    assert code == 4 and "no speech teacher outputs for fold 2" in text  # a teacher error
