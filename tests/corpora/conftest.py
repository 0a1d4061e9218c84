"""Tiny audio and video fixtures, written on the fly in the corpora's real layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf


def write_wav(
    path: Path, seconds: float = 0.05, sr: int = 48_000, channels: int = 1, freq: float = 440.0, amp: float = 0.3
) -> Path:
    """A sine wav; tiny by default, since adapters read only the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    tone = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), sr, subtype="PCM_16")
    return path


def write_video(
    path: Path,
    seconds: float = 0.5,
    fps: int = 30,
    audio: bool = True,
    sr: int = 48_000,
    layout: str = "stereo",
    freq: float = 440.0,
    options: dict[str, str] | None = None,
) -> Path:
    """A small mpeg4 video with an optional aac sine track (both ffmpeg-native encoders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=options or {}) as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = container.add_stream("aac", rate=sr, layout=layout) if audio else None
        for i in range(round(seconds * fps)):
            image = np.full((32, 32, 3), (i * 8) % 256, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            n_channels = len(av.AudioLayout(layout).channels)
            t = np.arange(int(seconds * sr)) / sr
            tone = np.tile((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), (n_channels, 1))
            for start in range(0, tone.shape[1], 1024):
                chunk = np.ascontiguousarray(tone[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = sr, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return path


@pytest.fixture(scope="session")
def make_wav() -> Callable[..., Path]:
    return write_wav


@pytest.fixture(scope="session")
def make_video() -> Callable[..., Path]:
    return write_video
