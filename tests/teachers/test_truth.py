"""Teachers scored against the hidden truth of the unlabeled clips (liser.teachers.truth)."""

import numpy as np
import pandas as pd
import pytest

from liser.constants import FERV39K_CLASSES, RAVDESS_EMOTIONS
from liser.targets import TeacherOutputs
from liser.teachers.truth import TRUTH_FILE, add_truth_scores, clip_predictions, find_truth, truth_scores


def one_hot(k: int, n: int, classes=RAVDESS_EMOTIONS) -> np.ndarray:
    p = np.full((n, len(classes)), 0.01, np.float32)
    p[:, k] = 1.0
    return p / p.sum(1, keepdims=True)


def speech_outputs() -> TeacherOutputs:
    e = RAVDESS_EMOTIONS.index
    segments = {
        "a": one_hot(e("happy"), 3),  # right
        "b": np.concatenate([one_hot(e("sad"), 1), one_hot(e("angry"), 2)]),  # mean says angry: right
        "c": one_hot(e("happy"), 2),  # wrong (truth sad)
        "d": one_hot(e("calm"), 2),  # truth "contempt": not a class of this teacher, not scored
    }
    return TeacherOutputs.from_segments("speech", RAVDESS_EMOTIONS, segments)


TRUTH = pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "emotion": ["happy", "angry", "sad", "contempt"],
                      "ferv_class": ["happy", "angry", "sad", "neutral"]})


def test_clip_calls_average_the_valid_segments_as_the_trainer_reads_them():
    e = RAVDESS_EMOTIONS.index
    probs = np.concatenate([one_hot(e("sad"), 1), one_hot(e("angry"), 2)])
    out = TeacherOutputs.from_segments("speech", RAVDESS_EMOTIONS, {"x": probs, "y": probs}, {"x": np.array([True, False, False]), "y": np.zeros(3, bool)})
    assert clip_predictions(out) == {"x": e("sad")}  # the invalid segments do not vote; y has none left


def test_truth_scores_count_right_calls_and_leave_out_foreign_classes():
    s = truth_scores(speech_outputs(), TRUTH)
    assert s["clips"] == 3 and s["not_scored"] == 1 and s["column"] == "emotion"
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["uar"] == pytest.approx((1 + 1 + 0) / 3)  # recall of happy, angry, sad
    assert (s["top_class"], s["top_class_share"]) == ("happy", pytest.approx(2 / 3))


def test_video_teachers_are_scored_against_ferv_class():
    k = FERV39K_CLASSES.index
    out = TeacherOutputs.from_segments("video", FERV39K_CLASSES, {"a": one_hot(k("happy"), 2, FERV39K_CLASSES), "d": one_hot(k("sad"), 2, FERV39K_CLASSES)})
    s = truth_scores(out, TRUTH)
    assert s["column"] == "ferv_class" and s["clips"] == 2 and s["accuracy"] == 0.5


def test_scores_go_into_the_file_metadata_only_where_a_truth_file_sits_next_to_the_corpus(tmp_path):
    corpus = tmp_path / "avclips"
    corpus.mkdir()
    out = speech_outputs()
    assert find_truth(corpus) is None and add_truth_scores(out, corpus) == {} and "hidden_truth" not in out.meta
    TRUTH.to_csv(tmp_path / TRUTH_FILE, index=False)
    scores = add_truth_scores(out, corpus)
    saved = TeacherOutputs.load(out.save(tmp_path / "speech.npz"))
    assert saved.meta["hidden_truth"] == scores and scores["accuracy"] == pytest.approx(2 / 3)


def test_load_truth_reads_the_column_a_kind_is_scored_against(tmp_path):
    from liser.teachers.truth import load_truth

    corpus = tmp_path / "avclips"
    corpus.mkdir()
    assert load_truth(corpus) is None
    TRUTH.to_csv(tmp_path / TRUTH_FILE, index=False)
    assert load_truth(corpus).to_dict() == dict(zip(TRUTH["clip_id"], TRUTH["emotion"]))
    assert load_truth(corpus, "video")["d"] == "neutral"


def test_a_student_is_scored_on_the_clips_with_a_truth_in_its_classes():
    import torch

    from liser.evaluate import predict_logits
    from liser.model import Student
    from liser.teachers.truth import TRUTH_STRIDE_SECONDS, student_truth_scores

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Student(n_classes=len(RAVDESS_EMOTIONS), n_video_classes=7).eval()
    clips = {c: rng.normal(size=(64, 260)).astype(np.float32) for c in ("a", "b", "c", "d", "x")}  # x: no truth
    truth = TRUTH.set_index("clip_id")["emotion"]
    s = student_truth_scores(model, clips, truth, RAVDESS_EMOTIONS)
    pred = predict_logits(model, [clips[c] for c in "abc"], stride_s=TRUTH_STRIDE_SECONDS).argmax(1)
    right = sum(RAVDESS_EMOTIONS[p] == truth[c] for c, p in zip("abc", pred))
    assert s["clips"] == 3  # d's "contempt" is no class of the student; x has no truth
    assert s["accuracy"] == pytest.approx(right / 3)
    assert student_truth_scores(model, {"x": clips["x"]}, truth, RAVDESS_EMOTIONS) == {}


def test_each_head_is_scored_against_its_own_truth_from_one_pass():
    """g_sup and g_sd against the speech emotion, g_vd against the FERV39k class; a model without
    distillation heads (CNN6) gets only g_sup."""
    import torch

    from liser.evaluate import predict_heads, predict_logits
    from liser.model import CNN6, Student
    from liser.teachers.truth import TRUTH_STRIDE_SECONDS, student_head_scores

    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    model = Student(n_classes=len(RAVDESS_EMOTIONS), n_video_classes=len(FERV39K_CLASSES)).eval()
    clips = {c: rng.normal(size=(64, 230)).astype(np.float32) for c in "abcd"}
    speech, video = TRUTH.set_index("clip_id")["emotion"], TRUTH.set_index("clip_id")["ferv_class"]
    s = student_head_scores(model, clips, {"sup": (speech, RAVDESS_EMOTIONS), "sd": (speech, RAVDESS_EMOTIONS), "vd": (video, FERV39K_CLASSES)})
    logits = predict_heads(model, [clips[c] for c in "abcd"], stride_s=TRUTH_STRIDE_SECONDS)
    assert set(logits) == {"sup", "sd", "vd"} and logits["vd"].shape == (4, len(FERV39K_CLASSES))
    np.testing.assert_allclose(logits["sup"], predict_logits(model, [clips[c] for c in "abcd"], stride_s=TRUTH_STRIDE_SECONDS), rtol=1e-6)
    for head, truth, classes, scored in (("sd", speech, RAVDESS_EMOTIONS, "abc"), ("vd", video, FERV39K_CLASSES, "abcd")):
        calls = [classes[i] for i in logits[head].argmax(1)]
        right = [call == truth[c] for c, call in zip("abcd", calls) if c in scored]
        assert s[head]["clips"] == len(scored)  # d's "contempt" is no speech class; its "neutral" face is scored
        assert s[head]["accuracy"] == pytest.approx(np.mean(right))
    assert not np.allclose(logits["sd"], logits["sup"])  # two heads, not one read twice

    plain = CNN6(n_classes=len(RAVDESS_EMOTIONS)).eval()
    only = student_head_scores(plain, clips, {"sup": (speech, RAVDESS_EMOTIONS), "sd": (speech, RAVDESS_EMOTIONS)})
    assert set(only) == {"sup"}
