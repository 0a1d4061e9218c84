import json

import pytest
import torch

from liser.constants import CROP_FRAMES, N_MELS
from liser.model import CNN6, ClassifierOutput, Student, build_student, count_parameters, describe


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


# ------------------------------------------------------------------------------- CNN-6
def _cnn6_parameters(k: int, mels_channels=(64, 128, 256, 512), d: int = 512) -> int:
    """By hand: bias-free 5x5 convs, BatchNorm scale + shift, FC1 and the output layer."""
    chans = (1, *mels_channels)
    conv = sum(25 * a * b for a, b in zip(chans, chans[1:]))
    return conv + 2 * sum(mels_channels) + (mels_channels[-1] + 1) * d + (d + 1) * k


def test_cnn6_shapes_for_two_lengths():
    model = CNN6(n_classes=7).eval()
    for frames in (CROP_FRAMES, 373):  # the LiSER crop and the NSL paper's (373, 64)
        out = model(torch.randn(2, N_MELS, frames))
        assert isinstance(out, ClassifierOutput)
        assert out.sup.shape == (2, 7) and out.embedding.shape == (2, 512)
        torch.testing.assert_close(out.sup, model.fc_out(out.embedding))
        assert (out.embedding >= 0).all()  # after FC1's ReLU


def test_cnn6_parameter_count_matches_the_formula():
    assert count_parameters(CNN6()) == _cnn6_parameters(8) == 4_571_080
    # the NSL paper's 4.44 M: its code's FC1 of 256 and DEMoS's 7 classes
    assert count_parameters(CNN6(n_classes=7, embedding=256)) == _cnn6_parameters(7, d=256) == 4_437_447
    assert count_parameters(CNN6(channels=(8, 16, 16, 32), embedding=24)) == _cnn6_parameters(8, (8, 16, 16, 32), 24)


def test_cnn6_refuses_inputs_too_small_for_its_pooling():
    with pytest.raises(ValueError, match="n_mels=8"):
        CNN6(n_mels=8)
    with pytest.raises(ValueError, match="at least 16 frames"):
        CNN6()(torch.randn(1, N_MELS, 10))


@pytest.mark.parametrize(
    "model", [Student(n_classes=5, n_video_classes=3), CNN6(n_classes=5, channels=(8, 16, 16, 32), embedding=24)], ids=["liser", "cnn6"]
)
def test_build_student_round_trip(model):
    torch.manual_seed(0)
    for p in model.parameters():  # move off the initialisation so the copy must load them
        p.data.normal_()
    config = json.loads(json.dumps(model.config))  # as a checkpoint stores it
    rebuilt = build_student(config)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, N_MELS, 64)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))
    assert config == model.config  # build_student left the dict alone


def test_old_configs_without_arch_are_liser_and_direct_construction_works():
    config = Student(n_classes=5).config
    assert config["arch"] == "cnn-lstm"
    assert isinstance(build_student({**config, "arch": "liser"}), Student)  # the old name, in checkpoints before issue 15
    old = {k: v for k, v in config.items() if k != "arch"}
    assert isinstance(build_student(old), Student)
    assert Student(**config).config == config  # train.load_student's path
    assert CNN6(**CNN6().config).config == CNN6().config
    with pytest.raises(ValueError, match="arch='cnn6'"):
        Student(arch="cnn6")


def test_unknown_arch_names_it_and_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown student arch 'vgg15'; known: cnn-lstm, cnn6, hubert"):
        build_student({"arch": "vgg15", "n_classes": 8})


def test_cnn6_trains_on_a_separable_problem():
    torch.manual_seed(0)
    model = CNN6(n_classes=2, n_mels=16, channels=(8, 16, 16, 32), embedding=16)
    x = torch.randn(16, 16, 16)
    y = torch.arange(16) % 2
    x[y == 1, :4] += 2.0  # class 1: loud low bands
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only waits on a second thread
    try:
        for _ in range(25):
            out = model.train()(x)
            loss = torch.nn.functional.cross_entropy(out.sup, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.5 * losses[0]
    assert (out.sup.argmax(1) == y).all()


def test_hubert_student_shapes_rebuild_and_trains():
    """The HuBERT-architecture student: transformers' HubertEncoder over projected mel frames."""
    from liser.model import HubertStudent

    torch.manual_seed(0)
    model = HubertStudent(n_classes=3, hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)
    assert type(model.encoder).__name__ == "HubertEncoder" and len(model.encoder.layers) == 1
    for frames in (94, 40):
        out = model(torch.randn(2, 64, frames) * 20 - 60)
        assert out.sup.shape == (2, 3) and out.embedding.shape == (2, 32)
    again = build_student(model.config)
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 64, 94)
    model.eval(), again.eval()
    assert torch.allclose(model(x).sup, again(x).sup)
    # a separable toy problem: class = sign of the mean level of the low mel bands
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    y = torch.tensor([0, 1] * 8)
    xs = torch.randn(16, 64, 50) + torch.where(y[:, None, None] == 0, -3.0, 3.0) * (torch.arange(64) < 16)[None, :, None]
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(xs).sup, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
