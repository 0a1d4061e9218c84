"""The LiSER losses (section 2.4): CE on labeled clips, distillation on unlabeled ones.

Every configuration goes through :func:`batch_loss`; a configuration only changes
the weights, the distillation distance and whether confidence weights apply.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F


class LossTerms(NamedTuple):
    total: torch.Tensor  # the mini-batch loss, eq. 4 or 5
    sup: torch.Tensor  # mean CE over labeled clips (for logging)
    sd: torch.Tensor  # mean speech-distillation distance over clips with a target
    vd: torch.Tensor  # mean video-distillation distance over clips with a target


def distill_distance(student_logits: torch.Tensor, teacher_probs: torch.Tensor, kind: Literal["mae", "ce"]) -> torch.Tensor:
    """Per-sample distance between the student's softmax and the teacher's.

    ``mae``: mean absolute error over classes (eq. 2-3). ``ce``: cross-entropy against
    the teacher's soft labels (Table 3, distill-ce).
    """
    if kind == "mae":
        return (F.softmax(student_logits, dim=-1) - teacher_probs).abs().mean(-1)
    if kind == "ce":
        return -(teacher_probs * F.log_softmax(student_logits, dim=-1)).sum(-1)
    raise ValueError(f"unknown distillation loss {kind!r}; use 'mae' or 'ce'")


def batch_loss(
    sup_logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    sd_logits: torch.Tensor | None = None,
    sd_target: torch.Tensor | None = None,
    sd_mask: torch.Tensor | None = None,
    vd_logits: torch.Tensor | None = None,
    vd_target: torch.Tensor | None = None,
    vd_mask: torch.Tensor | None = None,
    *,
    lambda_sd: float = 0.0,
    lambda_vd: float = 0.0,
    distill_loss: Literal["mae", "ce"] = "mae",
    confidence: bool = False,
) -> LossTerms:
    """Eq. 4 (``confidence=False``) or eq. 5 (``confidence=True``).

    (sum_i L_sup_i + sum_j (lambda_sd w_sd_j L_sd_j + lambda_vd w_vd_j L_vd_j)) / (N_l + N_u)

    where w is the teacher's max probability (eq. 5) or 1 (eq. 4). A clip whose
    teacher target is missing (mask False) contributes no term for that teacher but
    still counts in N_u. Either part may be absent (None): two-stage training uses
    only one at a time.
    """
    zero = next(t for t in (sup_logits, sd_logits, vd_logits) if t is not None).new_zeros(())
    n_l = 0 if sup_logits is None else sup_logits.shape[0]
    total, sup_mean = zero, zero
    if n_l:
        sup = F.cross_entropy(sup_logits, labels, reduction="none")
        total = total + sup.sum()
        sup_mean = sup.mean().detach()
    n_u = 0
    means = {}
    for name, logits, target, mask, lam in (
        ("sd", sd_logits, sd_target, sd_mask, lambda_sd),
        ("vd", vd_logits, vd_target, vd_mask, lambda_vd),
    ):
        means[name] = zero
        if logits is None or lam == 0:
            continue
        n_u = max(n_u, logits.shape[0])
        mask = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device) if mask is None else mask
        if not mask.any():
            continue
        dist = distill_distance(logits[mask], target[mask], distill_loss)
        weight = target[mask].max(-1).values if confidence else torch.ones_like(dist)
        total = total + lam * (weight * dist).sum()
        means[name] = dist.mean().detach()
    return LossTerms(total / max(n_l + n_u, 1), sup_mean, means["sd"], means["vd"])


# ------------------------------------------------------------------ EmoDistill (ICASSP 2024)
class EmoDistillTerms(NamedTuple):
    total: torch.Tensor  # eq. 5: alpha * logits + beta * embeddings + gamma * CE
    ce: torch.Tensor
    logits: torch.Tensor  # eq. 1, summed over the teachers that are on
    embeddings: torch.Tensor  # eq. 3, summed over the teachers that are on


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-sample KL(teacher || student) of the temperature-``tau`` softmaxes (eq. 1-2, Hinton's KD)."""
    log_s = F.log_softmax(student_logits / tau, dim=-1)
    log_t = F.log_softmax(teacher_logits / tau, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


def negative_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample -cos(a, b) (eq. 3-4): -1 when the student's projection points along the teacher's embedding."""
    return -F.cosine_similarity(a, b, dim=-1, eps=1e-8)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp(min=1)


def emodistill_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teachers: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]],
    *,
    alpha: float = 1.0,
    beta: float = 10.0,
    gamma: float = 2.0,
    temperatures: dict[str, float] | None = None,
) -> EmoDistillTerms:
    """Eq. 5 over one labeled mini-batch.

    ``teachers`` maps a teacher ("prosodic", "linguistic") to ``(student_projection [B, D],
    teacher_logits [B, K], teacher_embedding [B, D], mask [B] or None)``; a sample whose
    mask is False (the teacher had no input for it, e.g. no transcript) adds no term for
    that teacher. Each term is a mean over the samples that have it. ``temperatures``
    gives tau per teacher (default 1).
    """
    temperatures = temperatures or {}
    ce = F.cross_entropy(logits, labels)
    kd = emb = logits.new_zeros(())
    for name, (projection, t_logits, t_emb, mask) in teachers.items():
        m = None if mask is None else mask.to(logits.dtype)
        kd = kd + _masked_mean(kd_kl(logits, t_logits, temperatures.get(name, 1.0)), m)
        emb = emb + _masked_mean(negative_cosine(projection, t_emb), m)
    total = gamma * ce + alpha * kd + beta * emb
    return EmoDistillTerms(total, ce.detach(), kd.detach(), emb.detach())


# ------------------------------------------------------------------ NSL (on-device SER)
class NSLTerms(NamedTuple):
    total: torch.Tensor  # eq. 2 per sample, averaged over the batch
    ce: torch.Tensor
    neighbour: torch.Tensor  # mean over samples of the summed (1 - cos) to each neighbour


def nsl_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    embedding: torch.Tensor,
    neighbour_embedding: torch.Tensor,
    neighbour_mask: torch.Tensor,
    *,
    alpha: float = 0.1,
) -> NSLTerms:
    """Eq. 2 over one mini-batch: CE + alpha * sum over each sample's neighbours of (1 - cosine).

    ``embedding`` [B, D] is the student's intermediate embedding of the samples,
    ``neighbour_embedding`` [B, n, D] of their graph neighbours, ``neighbour_mask`` [B, n]
    False where a sample has fewer than n neighbours. Both sums of eq. 2 become means over
    the batch, so alpha keeps its meaning at any batch size.
    """
    ce = F.cross_entropy(logits, labels)
    distance = 1 - F.cosine_similarity(embedding.unsqueeze(1), neighbour_embedding, dim=-1, eps=1e-8)  # [B, n]
    neighbour = (distance * neighbour_mask.to(distance.dtype)).sum(1).mean()
    return NSLTerms(ce + alpha * neighbour, ce.detach(), neighbour.detach())
