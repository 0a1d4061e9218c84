import torch

from liser.constants import CROP_FRAMES, N_MELS
from liser.model import Student, count_parameters, describe


def test_parameter_count_matches_table1():
    model = Student(n_classes=8, n_video_classes=7)
    assert count_parameters(model) == 105_143  # the paper's "105K"
    assert "105,143" in describe(model, CROP_FRAMES)


def test_heads_shapes_and_lstm_final_state():
    model = Student(n_classes=6, n_video_classes=7).eval()
    out = model(torch.randn(4, N_MELS, CROP_FRAMES))
    assert out.sup.shape == (4, 6) and out.sd.shape == (4, 6) and out.vd.shape == (4, 7)
    assert out.embedding.shape == (4, 64)
    # the heads read the embedding: g_sup is a single linear layer on it
    torch.testing.assert_close(out.sup, model.g_sup(out.embedding))
