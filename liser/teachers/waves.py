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
# A segment holds speech when its RMS is within this many dB of the clip's loudest segment:
# pauses and room noise fall 30-50 dB below speech, the quietest syllables about 15.
SPEECH_RANGE_DB = 20.0
_FRAME = SAMPLE_RATE // 100  # 10 ms, for where speech is inside a clip


def _levels_db(wave: np.ndarray, block: int, *, partial: bool) -> np.ndarray:
    """Power in dB of each ``block`` samples of ``wave`` (the last, shorter block too if ``partial``)."""
    x = np.asarray(wave, np.float64)
    whole = len(x) // block
    power = np.square(x[: whole * block]).reshape(whole, block).mean(1)
    if partial and len(x) > whole * block:
        power = np.append(power, np.square(x[whole * block :]).mean())
    return 10 * np.log10(power + 1e-12)


def _holds_speech(db: np.ndarray) -> np.ndarray:
    """The one speech rule: within :data:`SPEECH_RANGE_DB` of the loudest block."""
    return db > db.max() - SPEECH_RANGE_DB


def speech_segments(wave: np.ndarray) -> np.ndarray:
    """Which 0.5 s segments of ``wave`` hold speech [ceil(len / 0.5 s)] (bool): a teacher's softmax
    on a pause is a guess from room noise, so those segments are marked invalid, as a video
    segment without a face is, and neither averaged nor distilled."""
    db = _levels_db(wave, SEGMENT_SAMPLES, partial=True)
    return _holds_speech(db) if len(db) else np.zeros(0, bool)


def speech_crop_starts(wave: np.ndarray, seconds: float) -> np.ndarray:
    """Start samples of the ``seconds`` crops centred on speech (10 ms frames that hold it, by
    the rule of :func:`speech_segments`); every start where the wave has no whole frame."""
    n = round(seconds * SAMPLE_RATE)
    last = max(len(wave) - n, 0)
    db = _levels_db(wave, _FRAME, partial=False)
    if len(db) == 0 or last == 0:
        return np.arange(last + 1)
    centres = np.flatnonzero(_holds_speech(db)) * _FRAME + _FRAME // 2
    return np.unique(np.clip(centres - n // 2, 0, last))


def normalize_wave(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as Wav2Vec2FeatureExtractor's ``do_normalize``."""
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


def crop_batch(
    waves: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, *, normalize: bool, starts: Sequence[np.ndarray] | None = None
) -> torch.Tensor:
    """[B, samples] random crops of ``seconds``, from anywhere or, per wave, from ``starts``
    (:func:`speech_crop_starts`); shorter waves are normalized then zero-padded."""
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros((len(waves), n), np.float32)
    for row, wave in enumerate(waves):
        start = int(rng.integers(0, max(len(wave) - n, 0) + 1)) if starts is None else int(rng.choice(starts[row]))
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
