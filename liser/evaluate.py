"""Evaluation (sections 3.3, 3.6): sliding 3 s windows, averaged g_sup logits, UAR and WAR.

Every 3 s window at 0.1 s stride is scored and the g_sup logits are averaged per clip.
Windows are cut from the clip's cached log-Mel: a window starting at t seconds starts
at frame round(t / 32 ms), so the stride alternates between 3 and 4 frames.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from liser.constants import CROP_FRAMES, EVAL_STRIDE_SECONDS, HOP_SECONDS, PAD_DB


def fit_frames(feat: np.ndarray, start: int = 0, frames: int = CROP_FRAMES) -> np.ndarray:
    """``frames`` columns from ``start``; a shorter clip is padded with silence (section 3.3)."""
    out = feat[:, start : start + frames]
    if out.shape[1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[1])), constant_values=PAD_DB)
    return out


def window_starts(n_frames: int, stride_s: float = EVAL_STRIDE_SECONDS) -> np.ndarray:
    """Start frames of every full 3 s window at ``stride_s``; one padded window if the clip is shorter."""
    last = n_frames - CROP_FRAMES
    if last <= 0:
        return np.zeros(1, dtype=int)
    starts = np.round(np.arange(0, last * HOP_SECONDS + 1e-9, stride_s) / HOP_SECONDS).astype(int)
    return np.unique(starts[starts <= last])


def _conv_bn_pairs(model: nn.Module):
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                    yield seq, i


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each Conv2d -> BatchNorm2d pair folded into one Conv2d.

    In eval mode BatchNorm is a fixed per-channel affine map, so folding it into the
    convolution computes the same function with one pass fewer over the largest
    activations (about a third of a LiSER student's window time on the CPU); logits
    agree to float rounding (~1e-6). The model itself is left untouched.
    """
    if not any(True for _ in _conv_bn_pairs(model)):
        return model.eval()
    fused = copy.deepcopy(model).eval()
    for seq, i in list(_conv_bn_pairs(fused)):
        conv = seq[i]
        channels_last = conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
        seq[i] = fuse_conv_bn_eval(conv, seq[i + 1])
        if channels_last:
            seq[i] = seq[i].to(memory_format=torch.channels_last)
        seq[i + 1] = nn.Identity()
    return fused


def predict_logits(model: nn.Module, feats: Sequence[np.ndarray], device: torch.device | str = "cpu", batch_size: int = 256,
                   stride_s: float = EVAL_STRIDE_SECONDS) -> np.ndarray:
    """Clip-level g_sup logits [N, K_S]: the mean over each clip's sliding windows (``stride_s`` apart)."""
    return predict_heads(model, feats, device, batch_size, stride_s, heads=("sup",))["sup"]


@torch.inference_mode()
def predict_heads(model: nn.Module, feats: Sequence[np.ndarray], device: torch.device | str = "cpu", batch_size: int = 256,
                  stride_s: float = EVAL_STRIDE_SECONDS, heads: Sequence[str] = ("sup", "sd", "vd")) -> dict[str, np.ndarray]:
    """Clip-level logits of each named head the model has (``sup``, ``sd``, ``vd`` of a LiSER student),
    from one pass over the windows: each the mean over a clip's sliding windows (``stride_s`` apart)."""
    model.eval()
    model = inference_copy(model)
    owners, windows = [], []
    for i, feat in enumerate(feats):
        for s in window_starts(feat.shape[1], stride_s):
            owners.append(i)
            windows.append(fit_frames(feat, s))
    owners = np.asarray(owners, dtype=np.int64)
    chunks: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, len(windows), batch_size):
        out = model(torch.from_numpy(np.stack(windows[lo : lo + batch_size])).to(device))
        for h in heads:
            value = getattr(out, h, None)  # a model without that head (CNN6: no sd/vd) has no such field
            if value is not None:
                chunks.setdefault(h, []).append(value.float().cpu())
    counts = np.bincount(owners, minlength=len(feats))[:, None]
    result = {}
    for h, parts in chunks.items():
        logits = torch.cat(parts).numpy()
        summed = np.zeros((len(feats), logits.shape[1]), np.float32)
        np.add.at(summed, owners, logits)
        result[h] = summed / counts
    if not chunks and "sup" in heads:  # no windows at all: the shape the old code gave
        result["sup"] = np.zeros((len(feats), 0), np.float32)
    return result


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    cm = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall: the mean recall over the classes present in ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes])) if len(classes) else float("nan")


def war(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted average recall: recall weighted by class frequency, i.e. accuracy."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


@dataclass
class Metrics:
    uar: float
    war: float
    confusion: np.ndarray  # [true, predicted] counts
    n: int

    def as_dict(self) -> dict:
        return {"uar": self.uar, "war": self.war, "n": self.n, "confusion": self.confusion.tolist()}


def evaluate(model: torch.nn.Module, feats: Sequence[np.ndarray], labels: np.ndarray, n_classes: int, device: torch.device | str = "cpu") -> Metrics:
    pred = predict_logits(model, feats, device).argmax(1)
    return Metrics(uar(labels, pred), war(labels, pred), confusion(labels, pred, n_classes), len(labels))
