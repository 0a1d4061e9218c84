import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from liser.constants import CROP_FRAMES, PAD_DB
from liser.evaluate import confusion, fit_frames, predict_logits, uar, war, window_starts


def test_uar_war_match_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 6, 200)
        p = np.where(rng.random(200) < 0.5, y, rng.integers(0, 6, 200))
        assert np.isclose(uar(y, p), balanced_accuracy_score(y, p))
        assert np.isclose(war(y, p), accuracy_score(y, p))
        np.testing.assert_array_equal(confusion(y, p, 6), confusion_matrix(y, p, labels=range(6)))


def test_uar_differs_from_war_on_imbalance():
    y = np.array([0] * 9 + [1])
    p = np.zeros(10, int)
    assert war(y, p) == 0.9 and uar(y, p) == 0.5


def test_window_starts_cover_clip_at_0_1_s():
    assert list(window_starts(CROP_FRAMES)) == [0]
    assert list(window_starts(50)) == [0]  # shorter than 3 s: one padded window
    starts = window_starts(CROP_FRAMES + 32)  # ~1 s longer -> windows at 0, 0.1, ..., ~1.0 s
    assert starts[0] == 0 and starts[-1] <= 32 and len(starts) == 11
    assert set(np.diff(starts)) <= {3, 4}  # 0.1 s = 3.125 frames of 32 ms
    padded = fit_frames(np.zeros((64, 50), np.float32))
    assert padded.shape == (64, CROP_FRAMES) and np.all(padded[:, 50:] == PAD_DB)


class _MeanModel(torch.nn.Module):
    """g_sup logits = the window's mean value in two classes, to check logit averaging."""

    def forward(self, x):
        m = x.mean(dim=(1, 2))
        return type("Out", (), {"sup": torch.stack([m, -m], 1)})()


def test_predict_averages_window_logits_per_clip():
    clip = np.tile(np.arange(CROP_FRAMES + 10, dtype=np.float32), (64, 1))
    logits = predict_logits(_MeanModel(), [clip, clip[:, :CROP_FRAMES]])
    expected = np.mean([clip[:, s : s + CROP_FRAMES].mean() for s in window_starts(clip.shape[1])])
    assert np.isclose(logits[0, 0], expected, rtol=1e-5)
    assert np.isclose(logits[1, 0], clip[:, :CROP_FRAMES].mean(), rtol=1e-5)


def _trained_bn(model):
    """A student whose BatchNorm layers hold non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(torch.randn(16, 64, CROP_FRAMES, generator=torch.Generator().manual_seed(seed)) * 10 - 40)
    return model.eval()


def test_inference_copy_folds_batchnorm_and_scores_the_same():
    from liser.evaluate import inference_copy
    from liser.model import CNN6, Student

    x = torch.randn(8, 64, CROP_FRAMES, generator=torch.Generator().manual_seed(9)) * 10 - 40
    for model in (_trained_bn(Student()), _trained_bn(CNN6(channels=(8, 8, 8, 8), embedding=16))):
        fused = inference_copy(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) >= 3  # the student itself is untouched
        with torch.no_grad():
            assert torch.allclose(model(x).sup, fused(x).sup, atol=1e-5)


def test_predict_logits_matches_the_unfused_student_window_by_window():
    from liser.model import Student

    model = _trained_bn(Student())
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal((64, n)) * 10 - 40).astype(np.float32) for n in (80, CROP_FRAMES, 120)]
    with torch.no_grad():  # the plain way: every window through the BatchNorm student, logits averaged per clip
        plain = np.stack([model(torch.from_numpy(np.stack([fit_frames(c, s) for s in window_starts(c.shape[1])]))).sup.mean(0).numpy() for c in clips])
    assert np.allclose(predict_logits(model, clips), plain, atol=1e-5)
