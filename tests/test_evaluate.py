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
