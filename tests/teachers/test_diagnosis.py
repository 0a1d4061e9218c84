"""The teacher diagnosis (liser.teachers.diagnosis, liser.reports.teachers, `liser teacher report`)."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from liser.cli import main
from liser.constants import FERV39K_CLASSES, FERV39K_OF_EMOTION, RAVDESS_EMOTIONS
from liser.reports.teachers import build_teacher_report, report_folder, summary_lines
from liser.teachers.diagnosis import cohen_kappa, diagnose
from liser.targets import TeacherOutputs

N = 80
RNG = np.random.default_rng(0)
TRUE = RNG.choice([c for c in RAVDESS_EMOTIONS if c != "calm"], N)  # balanced-ish, no class near 50 %
IDS = [f"clip{i:03d}" for i in range(N)]


def peaked(k: int, n_classes: int, height: float, n: int = 3) -> np.ndarray:
    p = np.full((n, n_classes), (1 - height) / (n_classes - 1), np.float32)
    p[:, k] = height
    return p


def healthy(tmp_path, name="speech-fold0.npz", right=0.9, meta=None):
    """A speech teacher right on ``right`` of the clips, confident; and a video teacher that agrees with the truth."""
    rng = np.random.default_rng(1)
    seg = {}
    for cid, t in zip(IDS, TRUE):
        k = RAVDESS_EMOTIONS.index(t) if rng.random() < right else rng.integers(len(RAVDESS_EMOTIONS))
        seg[cid] = peaked(int(k), len(RAVDESS_EMOTIONS), 0.8)
    TeacherOutputs.from_segments("speech", RAVDESS_EMOTIONS, seg, meta={"teacher": name[:-4], "val_uar": 0.6, **(meta or {})}).save(tmp_path / name)


def video(tmp_path, agree=True):
    rng = np.random.default_rng(2)
    seg = {}
    for cid, t in zip(IDS, TRUE):
        k = FERV39K_CLASSES.index(FERV39K_OF_EMOTION[t]) if agree else rng.integers(len(FERV39K_CLASSES))
        seg[cid] = peaked(int(k), len(FERV39K_CLASSES), 0.7)
    valid = {IDS[0]: np.zeros(3, bool)}  # one clip without a face: not covered
    TeacherOutputs.from_segments("video", FERV39K_CLASSES, seg, valid, meta={"teacher": "small-dfer"}).save(tmp_path / "video.npz")


def collapsed(tmp_path, name="speech-fold1.npz"):
    """Calls 90 % of the clips "sad", with nearly flat softmaxes."""
    seg = {cid: peaked(RAVDESS_EMOTIONS.index("sad") if i % 10 else RAVDESS_EMOTIONS.index("calm"), len(RAVDESS_EMOTIONS), 0.16) for i, cid in enumerate(IDS)}
    TeacherOutputs.from_segments("speech", RAVDESS_EMOTIONS, seg, meta={"teacher": name[:-4]}).save(tmp_path / name)


def truth_file(tmp_path):
    path = tmp_path / "truth.csv"
    pd.DataFrame({"clip_id": IDS, "emotion": TRUE, "ferv_class": [FERV39K_OF_EMOTION[t] for t in TRUE]}).to_csv(path, index=False)
    return path


def test_cohen_kappa_is_one_for_identical_calls_and_zero_at_chance():
    a = np.array([0, 1, 2, 0, 1, 2])
    assert cohen_kappa(a, a, 3)[0] == pytest.approx(1.0)
    k, observed, chance = cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 2)
    assert (k, observed, chance) == pytest.approx((0.0, 0.5, 0.5))


def test_a_collapsed_teacher_is_warned_about_and_a_healthy_one_is_not(tmp_path):
    healthy(tmp_path)
    collapsed(tmp_path)
    video(tmp_path)
    prior = {c: float(np.mean(TRUE == c)) for c in RAVDESS_EMOTIONS}
    diag = diagnose(tmp_path, unlabeled_ids=IDS + ["never-cached"], prior=prior, prior_source="test", truth_file=truth_file(tmp_path))
    by = {t.file: t for t in diag.teachers}
    good, bad, vid = by["speech-fold0.npz"], by["speech-fold1.npz"], by["video.npz"]
    assert good.warnings == [] and vid.warnings == []
    assert len(bad.warnings) == 2 and "90% of the clips 'sad'" in bad.warnings[0] and "mean confidence 0.16" in bad.warnings[1]
    assert bad.top_class == ("sad", pytest.approx(0.9))
    # coverage is of the corpus (81 clips, one never cached); the face-less clip is not covered
    assert good.covered == N and good.coverage == pytest.approx(N / (N + 1)) and vid.covered == N - 1
    assert good.truth["accuracy"] > 0.85 and vid.truth["accuracy"] == pytest.approx(1.0)
    assert sum(map(sum, good.truth["confusion"])) == N and good.mean_confidence == pytest.approx(0.8, abs=1e-6)
    counts, edges = good.confidence_histogram()
    assert counts.sum() == N and edges[0] == pytest.approx(1 / 8)
    # the healthy speech teacher agrees with the video teacher well above chance; the collapsed one does not
    sv = {g.a: g for g in diag.speech_video}
    assert sv["speech-fold0"].kappa > 0.8 and sv["speech-fold1"].kappa < 0.05
    assert sv["speech-fold0"].table.to_numpy().sum() == N - 1  # rows: speech calls, columns: video calls, clips both cover
    assert any("speech-fold1 and video" in w and "no better than chance" in w for w in diag.warnings)
    assert len(diag.between_folds) == 1 and diag.between_folds[0].kappa < 0.1


def test_the_page_and_csvs_show_the_diagnosis(tmp_path):
    healthy(tmp_path)
    collapsed(tmp_path)
    video(tmp_path, agree=False)
    diag = diagnose(tmp_path, truth_file=truth_file(tmp_path))
    paths = build_teacher_report(diag)
    page = paths[0].read_text()
    assert paths[0].name == "teachers.html" and "<script src" not in page and "<link" not in page  # self-contained
    for text in ("Warnings", "Speech-video agreement", "Agreement between the fold speech teachers", "against the hidden truth", "uniform (no labeled corpus given)"):
        assert text in page
    table = pd.read_csv(paths[1])
    assert list(table["file"]) == ["speech-fold0.npz", "speech-fold1.npz", "video.npz"] and table.loc[1, "warnings"] == 2
    agreement = pd.read_csv(paths[2])
    assert set(agreement["pair"]) == {"speech-video", "speech folds"} and len(agreement) == 3
    lines = summary_lines(diag)
    assert any(line.startswith("speech-fold1.npz") and "sad 90%" in line for line in lines)
    assert sum(line.startswith("WARNING") for line in lines) == len(diag.warnings) >= 3


def test_without_a_truth_the_page_says_so(tmp_path):
    healthy(tmp_path)
    page = build_teacher_report(diagnose(tmp_path))[0].read_text()
    assert "No hidden-truth file" in page and "Speech-video agreement" not in page


def test_report_on_the_synthetic_oracle_files_reads_the_corpora_and_the_truth(synth_root, tmp_path):
    diag, paths = report_folder(synth_root / "oracle-teachers", unlabeled=f"avclips:{synth_root / 'avclips'}", labeled=f"ravdess:{synth_root / 'ravdess'}", out_dir=tmp_path)
    assert diag.truth_file == synth_root / "avclips_truth.csv" and diag.prior_source.startswith("the labeled corpus")
    assert {t.kind for t in diag.teachers} == {"speech", "video"} and all(t.truth["accuracy"] > 0.5 for t in diag.teachers)
    assert diag.speech_video[0].kappa > 0.3 and paths[0] == tmp_path / "teachers.html"


def test_cli_teacher_report_prints_the_summary_and_fails_in_one_line(tmp_path):
    collapsed(tmp_path)
    r = CliRunner().invoke(main, ["teacher", "report", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "teacher diagnosis of" in r.output and "WARNING speech-fold1.npz" in r.output and (tmp_path / "teachers.html").exists()
    r = CliRunner().invoke(main, ["teacher", "report", str(tmp_path / "nothing")])
    assert r.exit_code == 3 and "not a folder of teacher-output files" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["teacher", "report", str(empty)])
    assert r.exit_code == 4 and "holds no teacher-output file" in r.output  # a teacher error
