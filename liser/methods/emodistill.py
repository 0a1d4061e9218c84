"""EmoDistill (ICASSP 2024): a speech student with prosodic and linguistic projection heads.

The student's backbone embedding feeds two GELU projection heads, one per teacher; their
concatenation feeds the classifier (section 3, Fig. 1). Training matches each head to its
teacher's embedding (negative cosine) and the student's logits to each teacher's
temperature-scaled softmax (KL), next to cross-entropy: eq. 5 in :func:`liser.losses.emodistill_loss`.
The teachers' outputs are clip-level rows of :class:`~liser.targets.ClipOutputs`,
one file per fold, computed once per clip before any trial.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from liser.configs import TrainConfig
from liser.losses import emodistill_loss
from liser.methods.base import Method
from liser.model import build_student
from liser.targets import ClipOutputs

HEADS = ("prosodic", "linguistic")
DEFAULT_DIM = 64  # a head's width when its teacher is off (nothing fixes it then)


class ProjectionOutput(NamedTuple):
    sup: torch.Tensor  # classifier logits [B, K]
    prosodic: torch.Tensor  # z'_P [B, D_P]
    linguistic: torch.Tensor  # z'_L [B, D_L]
    embedding: torch.Tensor  # the backbone's embedding [B, H]


class ProjectionStudent(nn.Module):
    """Any student backbone (its ``.embedding`` output) with EmoDistill's two heads and classifier.

    Each head is as wide as its teacher's embedding, so the cosine of eq. 3 compares like
    with like. The backbone's own heads stay unused (and untrained).
    """

    def __init__(self, backbone: nn.Module, n_classes: int, dims: dict[str, int], hidden: int = 64):
        super().__init__()
        self.backbone = backbone
        width = backbone.config.get("hidden") or backbone.config.get("embedding")
        self.config = {"arch": "emodistill", "backbone": dict(backbone.config), "n_classes": n_classes, "dims": dict(dims), "hidden": hidden}
        self.heads = nn.ModuleDict({k: nn.Sequential(nn.Linear(width, dims[k]), nn.GELU()) for k in HEADS})
        self.classifier = nn.Sequential(nn.Linear(sum(dims[k] for k in HEADS), hidden), nn.GELU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> ProjectionOutput:
        emb = self.backbone(x).embedding
        z = {k: self.heads[k](emb) for k in HEADS}
        return ProjectionOutput(self.classifier(torch.cat([z[k] for k in HEADS], -1)), z["prosodic"], z["linguistic"], emb)


def head_dims(teachers: dict[str, ClipOutputs]) -> dict[str, int]:
    return {k: int(teachers[k].embeddings.shape[1]) if k in teachers else DEFAULT_DIM for k in HEADS}


def lookup(outputs: ClipOutputs, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher logits [B, K], embeddings [B, D] and a mask [B] (False: the teacher has no row for that clip)."""
    mask = np.array([c in outputs for c in ids], bool)
    logits = np.zeros((len(ids), outputs.logits.shape[1]), np.float32)
    emb = np.zeros((len(ids), outputs.embeddings.shape[1]), np.float32)
    if mask.any():
        logits[mask], emb[mask] = outputs.take([c for c, m in zip(ids, mask) if m])
    return logits, emb, mask


def loss_terms(model: ProjectionStudent, cfg: TrainConfig, device, batch, teachers: dict[str, ClipOutputs]) -> dict[str, torch.Tensor]:
    """Eq. 5 on one labeled batch ``(x, y, clip_ids)``, for the loop's logging."""
    x, y, ids = batch
    out = model(torch.from_numpy(x).to(device))
    used = {}
    for kind in cfg.teacher_kinds:
        logits, emb, mask = (torch.from_numpy(a).to(device) for a in lookup(teachers[kind], ids))
        used[kind] = (getattr(out, kind), logits, emb, mask)
    terms = emodistill_loss(
        out.sup, torch.as_tensor(np.asarray(y)).long().to(device), used,
        alpha=cfg.alpha, beta=cfg.beta, gamma=cfg.gamma, temperatures={"prosodic": cfg.tau_prosodic, "linguistic": cfg.tau_linguistic},
    )
    return {"loss": terms.total, "loss_sup": terms.ce, "loss_logits": terms.logits, "loss_embeddings": terms.embeddings}


def coverage(teachers: dict[str, ClipOutputs], train_ids) -> dict[str, int]:
    """Training clips each teacher has no output for (their terms are masked): counted, reported."""
    return {f"train_no_{k}_output": int(sum(c not in out for c in train_ids)) for k, out in teachers.items()}


class EmoDistill(Method):
    """Prosodic and linguistic teachers on the labeled clips; the student gains EmoDistill's heads."""

    name = "emodistill"

    def __init__(self, cfg, teachers, train_ids, feats, cache_dir=None):
        super().__init__(cfg, teachers, train_ids, feats, cache_dir)
        self.counts.update(coverage({k: teachers[k] for k in cfg.teacher_kinds}, train_ids))

    @classmethod
    def build_model(cls, cfg, n_classes, teachers) -> nn.Module:
        return ProjectionStudent(super().build_model(cfg, n_classes, teachers), n_classes, head_dims(teachers))

    @classmethod
    def rebuild(cls, config: dict) -> nn.Module | None:
        if config.get("arch") != "emodistill":
            return None
        return ProjectionStudent(build_student(config["backbone"]), config["n_classes"], config["dims"], config.get("hidden", 64))

    def loss(self, model, device, labeled, unlabeled, rng) -> dict[str, torch.Tensor]:
        return loss_terms(model, self.cfg, device, labeled, self.teachers)
