"""Contract test: every named configuration goes through the same checks."""

import numpy as np
import pytest
import torch

from liser.configs import PRESETS, make_config
from liser.constants import CROP_FRAMES, N_MELS
from liser.data import UnlabeledBatch
from liser.losses import batch_loss, distill_distance
from liser.model import Student
from liser.train import compute_loss


def _batches(rng, n_l=5, n_u=4, k_s=8, k_v=7):
    x_l = rng.standard_normal((n_l, N_MELS, CROP_FRAMES)).astype(np.float32) * 10 - 40
    y = rng.integers(0, k_s, n_l)
    unl = UnlabeledBatch(rng.standard_normal((n_u, N_MELS, CROP_FRAMES)).astype(np.float32) * 10 - 40)
    for kind, k in (("speech", k_s), ("video", k_v)):
        unl.targets[kind] = rng.dirichlet(np.ones(k), n_u).astype(np.float32)
        unl.masks[kind] = np.array([True] * (n_u - 1) + [False])  # last clip: no target
    return (x_l, y), unl


def _parts(cfg):
    """The batch shapes each schedule feeds: joint mixes both, two-stage has one each stage."""
    return [("labeled", "unlabeled")] if cfg.schedule == "joint" else [("unlabeled",), ("labeled",)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_configuration_trains_the_conv_layers(name):
    cfg = make_config(name)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    labeled, unlabeled = _batches(rng)
    for parts in _parts(cfg):
        model = Student().train()
        terms = compute_loss(model, cfg, "cpu", labeled if "labeled" in parts else None, unlabeled if "unlabeled" in parts else None)
        assert torch.isfinite(terms.total) and terms.total.item() > 0
        terms.total.backward()
        grad = model.conv[0].weight.grad
        assert grad is not None and grad.abs().sum() > 0, f"{name}: no gradient reaches the first conv layer"
        uses = {"sd": cfg.lambda_sd > 0 and "unlabeled" in parts, "vd": cfg.lambda_vd > 0 and "unlabeled" in parts}
        for head, used in (("g_sd", uses["sd"]), ("g_vd", uses["vd"])):
            g = getattr(model, head)[0].weight.grad
            assert (g is not None and g.abs().sum() > 0) == used, f"{name}: {head} gradient should be {'on' if used else 'off'}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_configuration_matches_a_hand_computed_example(name):
    """Eq. 4/5 by hand: (sum CE + sum_j (lam_sd w_sd L_sd + lam_vd w_vd L_vd)) / (N_l + N_u)."""
    cfg = make_config(name, lambda_sd=0.5 if PRESETS[name].get("lambda_sd") else 0, lambda_vd=2.0 if PRESETS[name].get("lambda_vd") else 0)
    sup = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    sd = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    t_sd = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]])
    m_sd = torch.tensor([True, True, False])
    vd = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    t_vd = torch.tensor([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    m_vd = torch.tensor([True, False, True])
    got = batch_loss(sup, y, sd, t_sd, m_sd, vd, t_vd, m_vd, lambda_sd=cfg.lambda_sd, lambda_vd=cfg.lambda_vd, distill_loss=cfg.distill_loss, confidence=cfg.confidence)

    def softmax(v):
        e = np.exp(np.asarray(v) - np.max(v))
        return e / e.sum()

    ce = [-np.log(softmax([2, 0, 0])[0]), -np.log(softmax([0, 1, 0])[2])]
    total = sum(ce)
    for logits, targets, mask, lam in ((sd, t_sd, m_sd, cfg.lambda_sd), (vd, t_vd, m_vd, cfg.lambda_vd)):
        for lo, t, m in zip(logits.numpy(), targets.numpy(), mask.numpy()):
            if not m or lam == 0:
                continue
            p = softmax(lo)
            dist = np.mean(np.abs(p - t)) if cfg.distill_loss == "mae" else -np.sum(t * np.log(p))
            w = t.max() if cfg.confidence else 1.0
            total += lam * w * dist
    n = 2 + (3 if cfg.distills else 0)
    assert got.total.item() == pytest.approx(total / n, rel=1e-5)
    assert got.sup.item() == pytest.approx(np.mean(ce), rel=1e-5)


def test_distances():
    logits = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0]])
    assert distill_distance(logits, target, "mae").item() == pytest.approx(0.5)
    assert distill_distance(logits, target, "ce").item() == pytest.approx(np.log(2))
    with pytest.raises(ValueError):
        distill_distance(logits, target, "kl")


def test_fully_masked_unlabeled_batch_adds_nothing_but_counts():
    sup, y = torch.zeros(2, 3), torch.tensor([0, 1])
    sd, t, m = torch.zeros(2, 3), torch.full((2, 3), 1 / 3), torch.tensor([False, False])
    got = batch_loss(sup, y, sd, t, m, lambda_sd=1.0)
    assert got.total.item() == pytest.approx(2 * np.log(3) / 4)
