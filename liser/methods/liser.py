"""LiSER's batch loss (eq. 4-5): cross-entropy on the labeled crops, distillation on the unlabeled ones."""

from __future__ import annotations

import numpy as np
import torch

from liser.configs import TrainConfig
from liser.losses import LossTerms, batch_loss
from liser.methods.base import Method
from liser.model import Student


class LiSER(Method):
    """Labeled cross-entropy plus distillation from the speech and video teachers on unlabeled clips."""

    name = "liser"

    def loss(self, model, device, labeled, unlabeled, rng) -> dict[str, torch.Tensor]:
        t = compute_loss(model, self.cfg, device, labeled, unlabeled)
        return {"loss": t.total, "loss_sup": t.sup, "loss_sd": t.sd, "loss_vd": t.vd}


def compute_loss(model: Student, cfg: TrainConfig, device, labeled=None, unlabeled=None) -> LossTerms:
    """The mini-batch loss of eq. 4/5 for a labeled batch ``(x, y)`` and/or an UnlabeledBatch.

    Eq. 4 is over *one* mini-batch of N_l + N_u samples, so both go through the student in
    one forward pass: BatchNorm then normalises them with the same batch statistics, and
    its running statistics are those of the joint batch. Two passes would train each part
    under its own statistics and test labeled-domain clips under a mix of both.
    """
    parts = [p for p in (labeled[0] if labeled is not None else None, unlabeled.x if unlabeled is not None else None) if p is not None]
    out = model(torch.from_numpy(np.concatenate(parts) if len(parts) > 1 else parts[0]).to(device))
    n_l = len(labeled[0]) if labeled is not None else 0
    sup = labels = None
    if labeled is not None:
        sup = out.sup[:n_l]
        labels = torch.from_numpy(np.asarray(labeled[1])).long().to(device)
    distil = {}
    if unlabeled is not None:
        for kind, head in (("speech", out.sd[n_l:]), ("video", out.vd[n_l:])):
            if kind in unlabeled.targets:
                distil[kind] = (head, torch.from_numpy(unlabeled.targets[kind]).to(device), torch.from_numpy(unlabeled.masks[kind]).to(device))
    sd, vd = distil.get("speech", (None,) * 3), distil.get("video", (None,) * 3)
    return batch_loss(
        sup, labels, *sd, *vd,
        lambda_sd=cfg.lambda_sd, lambda_vd=cfg.lambda_vd, distill_loss=cfg.distill_loss, confidence=cfg.confidence,
    )
