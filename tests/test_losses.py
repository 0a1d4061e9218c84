"""Contract test: every named configuration, of every method, goes through the same checks."""

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


LISER_PRESETS = sorted(n for n in PRESETS if make_config(n).method == "liser" and make_config(n).student == "cnn-lstm")


@pytest.mark.parametrize("name", LISER_PRESETS)
def test_every_liser_configuration_trains_the_conv_layers(name):
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


@pytest.mark.parametrize("name", LISER_PRESETS)
def test_every_liser_configuration_matches_a_hand_computed_example(name):
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


# ---------------------------------------------------------------- every method, one contract
def _clip_teachers(ids, k, rng):
    from liser.targets import ClipOutputs

    def make(kind, d):
        rows = {c: (rng.standard_normal(k), rng.standard_normal(d)) for c in ids[:-1]}  # the last clip: no output
        return ClipOutputs.from_rows(kind, [f"c{i}" for i in range(k)], rows)

    return {"prosodic": make("prosodic", 12), "linguistic": make("linguistic", 6), "upstream": make("upstream", 5)}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_configuration_of_every_method_trains_its_first_layer(name):
    """Build the configuration's student, take one step of its method's loss: finite, positive, and
    the gradient reaches the first layer; EmoDistill's heads train exactly when their teacher is on."""
    from liser.data import LabeledBatch
    from liser.methods import build_model, make_method

    cfg = make_config(name, **({"nsl_epsilon": -1.0} if PRESETS[name].get("method") == "nsl" else {}))
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    k, ids = 4, [f"clip{i}" for i in range(6)]
    feats = {c: rng.standard_normal((N_MELS, CROP_FRAMES + 7)).astype(np.float32) * 10 - 40 for c in ids}
    teachers = {kind: t for kind, t in _clip_teachers(ids, k, rng).items() if kind in cfg.teacher_kinds}
    labeled, unlabeled = _batches(rng, n_l=6, k_s=k)
    batch = LabeledBatch(labeled[0], labeled[1], ids)
    if cfg.method == "liser":
        teachers = {}
        unlabeled = unlabeled if cfg.distills else None
        for kind in cfg.teacher_kinds:
            unlabeled.targets[kind] = unlabeled.targets[kind][:, :k] / unlabeled.targets[kind][:, :k].sum(1, keepdims=True) if kind == "speech" else unlabeled.targets[kind]
    model = build_model(cfg, k, teachers).train()
    method = make_method(cfg, teachers, ids, feats)
    terms = method.loss(model, "cpu", batch, unlabeled, rng)
    assert torch.isfinite(terms["loss"]) and terms["loss"].item() != 0
    terms["loss"].backward()
    first = next(model.parameters())  # the input layer's weight, whatever the student
    assert first.grad is not None and first.grad.abs().sum() > 0, f"{name}: no gradient reaches the student's first layer"
    if cfg.method == "emodistill":
        for head in ("prosodic", "linguistic"):
            g = model.heads[head][0].weight.grad
            # the classifier reads both heads, so both always train; a teacher's term adds its own pull
            assert g is not None and g.abs().sum() > 0
        assert set(k for k in terms if k.startswith("loss_")) == {"loss_sup", "loss_logits", "loss_embeddings"}
        assert (terms["loss_logits"].item() != 0) == bool(cfg.teacher_kinds)  # measured (and logged) whether or not alpha counts it
        expected = cfg.gamma * terms["loss_sup"] + cfg.alpha * terms["loss_logits"] + cfg.beta * terms["loss_embeddings"]
        assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    if cfg.method == "nsl":
        assert method.counts["graph_nodes"] == len(ids) - 1 and method.counts["graph_no_upstream"] == 1
        assert terms["loss_neighbour"].item() > 0


def test_emodistill_loss_matches_a_hand_computed_example():
    from liser.losses import emodistill_loss

    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
    y = torch.tensor([0, 2])
    zp, tp = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    zl, tl = torch.tensor([[1.0, 2.0, 2.0], [1.0, 0.0, 0.0]]), torch.tensor([[2.0, 4.0, 4.0], [0.0, 1.0, 0.0]])
    lp, ll = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    mask_l = torch.tensor([True, False])
    got = emodistill_loss(logits, y, {"prosodic": (zp, lp, tp, None), "linguistic": (zl, ll, tl, mask_l)},
                          alpha=0.7, beta=3.0, gamma=2.0, temperatures={"prosodic": 0.5, "linguistic": 4.0})

    def sm(v, tau=1.0):
        e = np.exp(np.asarray(v, float) / tau - np.max(np.asarray(v, float) / tau))
        return e / e.sum()

    def kl(t, s, tau):
        p, q = sm(t, tau), sm(s, tau)
        return float(np.sum(p * np.log(p / q)))

    def cos(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    L = logits.numpy()
    ce = np.mean([-np.log(sm(L[0])[0]), -np.log(sm(L[1])[2])])
    kd = np.mean([kl(lp[i], L[i], 0.5) for i in range(2)]) + kl(ll[0], L[0], 4.0)  # the second clip has no linguistic row
    emb = np.mean([-cos(zp[i], tp[i]) for i in range(2)]) + -cos(zl[0], tl[0])
    assert got.ce.item() == pytest.approx(ce, rel=1e-5)
    assert got.logits.item() == pytest.approx(kd, rel=1e-5)
    assert got.embeddings.item() == pytest.approx(emb, rel=1e-5)
    assert got.total.item() == pytest.approx(2.0 * ce + 0.7 * kd + 3.0 * emb, rel=1e-5)


def test_nsl_loss_matches_a_hand_computed_example():
    from liser.losses import nsl_loss

    logits, y = torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.tensor([1, 1])
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    nb = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, -1.0], [5.0, 5.0]]])
    mask = torch.tensor([[True, False], [True, True]])
    got = nsl_loss(logits, y, emb, nb, mask, alpha=0.1)
    ce = np.mean([np.log(1 + np.exp(-1.0)), np.log(1 + np.exp(2.0))])
    neighbour = np.mean([1 - 1 / np.sqrt(2), (1 - (-1)) + (1 - 1 / np.sqrt(2))])
    assert got.ce.item() == pytest.approx(ce, rel=1e-5)
    assert got.neighbour.item() == pytest.approx(neighbour, rel=1e-5)
    assert got.total.item() == pytest.approx(ce + 0.1 * neighbour, rel=1e-5)



def _bn_stats(model):
    return [(m.running_mean.clone(), m.running_var.clone()) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_one_mini_batch_is_one_forward_pass():
    """Eq. 4 is one mini-batch of N_l + N_u samples: after one step every BatchNorm's running
    statistics equal those of a single pass over the concatenated crops, and the loss is the
    one computed from that pass. Two passes (labeled, then unlabeled) give other statistics."""
    cfg = make_config("vid-sp-dstl")
    (x_l, y), unl = _batches(np.random.default_rng(3), n_l=6, n_u=5)
    unl.x = unl.x + 25  # a louder unlabeled domain: two passes would normalise each part on its own
    torch.manual_seed(0)
    fresh = Student().train().state_dict()
    model, joint, split = (Student().train() for _ in range(3))
    for m in (model, joint, split):
        m.load_state_dict(fresh)

    terms = compute_loss(model, cfg, "cpu", (x_l, y), unl)
    out = joint(torch.from_numpy(np.concatenate([x_l, unl.x])))
    split(torch.from_numpy(x_l))
    split(torch.from_numpy(unl.x))

    for (m1, v1), (m2, v2) in zip(_bn_stats(model), _bn_stats(joint), strict=True):
        torch.testing.assert_close(m1, m2)
        torch.testing.assert_close(v1, v2)
    assert not torch.allclose(_bn_stats(split)[0][0], _bn_stats(joint)[0][0])
    n = len(x_l)
    masks = {k: torch.from_numpy(unl.masks[k]) for k in unl.masks}
    expected = batch_loss(
        out.sup[:n], torch.from_numpy(y).long(), out.sd[n:], torch.from_numpy(unl.targets["speech"]), masks["speech"],
        out.vd[n:], torch.from_numpy(unl.targets["video"]), masks["video"], lambda_sd=1.0, lambda_vd=1.0,
    )
    torch.testing.assert_close(terms.total, expected.total)
