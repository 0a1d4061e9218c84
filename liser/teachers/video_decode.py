"""Video frames for the video teacher: a video decoded with PyAV to RGB frames at 30 fps.

A stream at another rate is resampled by picking, for every 1/30 s tick, the source frame
nearest to it (frames are dropped or repeated, never blended), and :class:`VideoInfo`
says so. A file that cannot give usable frames raises :class:`VideoError` with a reason
in a few words, which the face store remembers so a bad clip is a counted skip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from liser.audio import open_container
from liser.constants import DECODED_FRACTION_MIN, VIDEO_FPS
from liser.errors import MediaError

class VideoError(MediaError):
    """A video whose frames cannot be used; ``reason`` says why in a few words."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`read_frames` read and what it did to the stream."""

    source_fps: float
    fps: float
    n_source_frames: int  # frames decoded from the stream
    n_frames: int  # frames returned, at ``fps``
    resampled: bool  # frame indices were resampled to ``fps``
    source_size: tuple[int, int]  # (width, height) in the file
    size: tuple[int, int]  # (width, height) returned (smaller when ``max_side`` applied)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def read_frames(path: str | Path, fps: float = VIDEO_FPS, max_side: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode the first video stream to RGB uint8 frames [n, H, W, 3] at ``fps``.

    Streams at another rate (25, 60 fps, variable) are resampled: tick k at
    ``t0 + k / fps`` takes the decoded frame whose timestamp is nearest. Streams
    within 0.05 fps of ``fps`` are returned frame for frame. ``max_side`` shrinks
    frames whose longer side exceeds it (keeps the aspect ratio) while decoding.

    Raises:
        VideoError: empty or unreadable file, no video stream, decoding failure,
            or fewer frames than the header promises (a truncated file).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise VideoError("empty file", path)
    except OSError as err:
        raise VideoError(f"unreadable ({err.strerror or err})", path) from err
    with open_container(path, VideoError) as container:
        if not container.streams.video:
            raise VideoError("no video stream", path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        header_fps = float(rate) if rate else math.nan
        width, height = stream.codec_context.width, stream.codec_context.height
        out_w, out_h = width, height
        if max_side and max(width, height) > max_side:
            scale = max_side / max(width, height)
            out_w, out_h = max(round(width * scale), 1), max(round(height * scale), 1)
        same_rate = math.isfinite(header_fps) and abs(header_fps - fps) <= 0.05
        picker = _NearestFramePicker(fps, header_fps, keep_all=same_rate)
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else (i / header_fps if math.isfinite(header_fps) else i / fps)
                picker.add(t, _LazyRGB(frame, out_w, out_h))
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise VideoError(f"truncated or corrupt (decoding failed after {picker.n_source} frames)", path) from err
        expected = int(stream.frames)
        if not expected and stream.duration is not None and stream.time_base is not None and math.isfinite(header_fps):
            expected = round(float(stream.duration * stream.time_base) * header_fps)
    if picker.n_source == 0:
        raise VideoError("no video frames decoded", path)
    if expected and picker.n_source < DECODED_FRACTION_MIN * expected:
        raise VideoError(f"truncated (decoded {picker.n_source} of {expected} frames)", path)
    frames = picker.finish()
    source_fps = header_fps if math.isfinite(header_fps) else picker.estimated_fps()
    info = VideoInfo(
        source_fps=round(source_fps, 3),
        fps=float(fps),
        n_source_frames=picker.n_source,
        n_frames=len(frames),
        resampled=not same_rate,
        source_size=(width, height),
        size=(out_w, out_h),
    )
    return frames, info


class _LazyRGB:
    """A decoded frame, converted to RGB once and only if it is picked (60 fps drops half)."""

    def __init__(self, frame: av.VideoFrame, width: int, height: int) -> None:
        self.frame, self.width, self.height = frame, width, height
        self._rgb: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self.frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
            self.frame = None  # release the decoder's buffer
        return self._rgb


class _NearestFramePicker:
    """Streams decoded frames in and keeps, for each output tick, the nearest one."""

    def __init__(self, fps: float, source_fps: float, keep_all: bool) -> None:
        self.fps, self.source_fps, self.keep_all = fps, source_fps, keep_all
        self.picked: list[np.ndarray] = []
        self.times: list[float] = []
        self.prev: tuple[float, _LazyRGB] | None = None
        self.t0: float | None = None
        self.n_source = 0

    def add(self, t: float, frame: _LazyRGB) -> None:
        self.n_source += 1
        if self.keep_all:
            self.picked.append(frame.rgb())
            return
        if self.t0 is None:
            self.t0 = t
        self.times.append(t)
        k = len(self.picked)
        while self.t0 + k / self.fps <= t + 1e-9:
            tick = self.t0 + k / self.fps
            nearer_prev = self.prev is not None and tick - self.prev[0] < t - tick
            self.picked.append((self.prev[1] if nearer_prev else frame).rgb())
            k += 1
        self.prev = (t, frame)

    def estimated_fps(self) -> float:
        steps = np.diff(self.times)
        steps = steps[steps > 0]
        return float(1 / np.median(steps)) if len(steps) else self.fps

    def finish(self) -> np.ndarray:
        if not self.keep_all and self.prev is not None:
            src = self.source_fps if math.isfinite(self.source_fps) and self.source_fps > 0 else self.estimated_fps()
            span = self.prev[0] - self.t0 + 1 / src  # the last frame lasts one source period
            n_out = max(1, round(span * self.fps))
            self.picked = self.picked[:n_out] + [self.prev[1].rgb()] * max(0, n_out - len(self.picked))
        return np.stack(self.picked)
