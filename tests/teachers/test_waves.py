"""The speech teacher's inputs: which 0.5 s segments hold speech, and crops centred on it."""

from __future__ import annotations

import numpy as np
import pytest

from liser.constants import SAMPLE_RATE
from liser.teachers import waves


def _pause_tone_pause(seed: int = 0) -> np.ndarray:
    """1 s of room noise (-60 dBFS), 1 s of a -20 dBFS tone, 0.5 s of room noise."""
    rng = np.random.default_rng(seed)
    noise = lambda s: (rng.standard_normal(int(s * SAMPLE_RATE)) * 10 ** (-60 / 20)).astype(np.float32)  # noqa: E731
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (np.sqrt(2) * 10 ** (-20 / 20) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.concatenate([noise(1.0), tone, noise(0.5)])


def test_speech_segments_mark_the_pauses_invalid():
    mask = waves.speech_segments(_pause_tone_pause())
    assert mask.tolist() == [False, False, True, True, False]
    # a quiet syllable 15 dB under the loudest still counts; room noise 40 dB under does not
    wave = _pause_tone_pause()
    wave[SAMPLE_RATE + SAMPLE_RATE // 2 : 2 * SAMPLE_RATE] *= 10 ** (-15 / 20)
    assert waves.speech_segments(wave).tolist() == [False, False, True, True, False]
    assert waves.speech_segments(np.zeros(0, np.float32)).shape == (0,)
    assert waves.speech_segments(np.zeros(SAMPLE_RATE, np.float32)).all()  # nothing louder: keep all


def test_speech_crops_are_centred_on_speech():
    wave = _pause_tone_pause()
    n = SAMPLE_RATE // 2
    starts = waves.speech_crop_starts(wave, 0.5)
    assert starts.min() >= 0 and starts.max() <= len(wave) - n
    centres = starts + n // 2
    assert centres.min() >= SAMPLE_RATE - 80 and centres.max() <= 2 * SAMPLE_RATE + 80  # inside the tone, to a frame
    rng = np.random.default_rng(0)
    x = waves.crop_batch([wave] * 64, 0.5, rng, normalize=False, starts=[starts] * 64).numpy()
    level = 10 * np.log10(np.mean(x**2, 1))
    assert level.min() > -30  # every crop is mostly tone
    anywhere = waves.crop_batch([wave] * 64, 0.5, rng, normalize=False).numpy()
    assert (10 * np.log10(np.mean(anywhere**2, 1))).min() < -40  # unconstrained crops do land in the pauses
    # a wave no longer than the crop has one start
    assert waves.speech_crop_starts(wave[:n], 0.5).tolist() == [0]


@pytest.mark.parametrize("seconds", [0.5, 3.0])
def test_crop_batch_shapes(seconds):
    rng = np.random.default_rng(0)
    x = waves.crop_batch([_pause_tone_pause()], seconds, rng, normalize=True)
    assert tuple(x.shape) == (1, round(seconds * SAMPLE_RATE))
