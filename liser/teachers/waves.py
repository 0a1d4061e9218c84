"""The speech teacher's inputs: normalized waveforms, random crops for training, 0.5 s segments.

Shared by the speech teacher, the tiny-synth backbone build and the NSL upstream, so each
normalizes and cuts speech exactly as the others do (section 3.4's 0.5 s segments).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from liser.constants import SAMPLE_RATE, TEACHER_SEGMENT_SECONDS
from liser.errors import TeacherError

SEGMENT_SAMPLES = round(TEACHER_SEGMENT_SECONDS * SAMPLE_RATE)


def normalize_wave(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as Wav2Vec2FeatureExtractor's ``do_normalize``."""
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


def crop_batch(waves: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, *, normalize: bool) -> torch.Tensor:
    """[B, samples] random crops of ``seconds``; shorter waves are normalized then zero-padded."""
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros((len(waves), n), np.float32)
    for row, wave in enumerate(waves):
        start = int(rng.integers(0, max(len(wave) - n, 0) + 1))
        piece = wave[start : start + n]
        out[row, : len(piece)] = normalize_wave(piece) if normalize else piece
    return torch.from_numpy(out)


def segment_wave(wave: np.ndarray, *, normalize: bool) -> np.ndarray:
    """[ceil(len / 0.5 s), 0.5 s] segments; the last is zero-padded, each normalized on its own samples."""
    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise TeacherError(f"expected a mono waveform (1-D array), got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise TeacherError("waveform holds NaN or inf samples")
    n_seg = math.ceil(len(wave) / SEGMENT_SAMPLES)
    out = np.zeros((n_seg, SEGMENT_SAMPLES), np.float32)
    for s in range(n_seg):
        piece = wave[s * SEGMENT_SAMPLES : (s + 1) * SEGMENT_SAMPLES]
        out[s, : len(piece)] = normalize_wave(piece) if normalize else piece
    return out


def step_logits(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, loss_fn=torch.nn.functional.cross_entropy
) -> tuple[float, torch.Tensor]:
    """One training step (train mode, loss, backward, step); the loss and the detached logits."""
    model.train()
    logits = model(input_values=x).logits
    loss = loss_fn(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item()), logits.detach()
