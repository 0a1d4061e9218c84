"""Unlabeled audio-visual clips, in the MSP-Face layout: the distillation data.

MSP-Face (Vidal et al., ICMI 2020) is the paper's unlabeled set (section 3.1):
in-the-wild videos of one person facing the camera, 30 fps, about 9.25 s on
average; the authors could still download 46.55 h from 386 speakers. Its segment
videos are named ``MSP-FACE_vvvv_ssss.mp4`` (source video ``vvvv``, segment
``ssss``) and found by a recursive search under ``root``::

    root/.../MSP-FACE_0001_0001.mp4
    root/.../MSP-FACE_0001_0002.mp4

Any other ``.mp4/.mkv/.avi/.mov/.webm`` is accepted too, since people bring
their own unlabeled audio-visual sets; such a file's speaker is its stem.

Each clip is one row: ``path`` and ``video_path`` are the same video (the audio
comes from its audio track), ``label`` is None and ``label_index`` -1, because no
labels are ever read here, even where MSP-Face ships some. ``speaker`` is the
source video id, a proxy that assumes one speaker per source video. Extra
columns ``fps`` and ``n_frames`` come from the container; a frame rate other
than 30 fps is kept and recorded, for the video teacher to handle.

Skipped with the reason: containers that do not open (including an mp4 cut
short before its index), no audio track, no video stream, and a name already
seen. An mp4 whose index comes first and whose data is cut short opens
normally; it is caught when decoded (:func:`liser.audio.load_audio`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import av

from liser.audio import VIDEO_SUFFIXES, AudioError, audio_info, open_container
from liser.corpora.manifest import Corpus, find_media, SkipFile, make_manifest, make_skips, read_files
from liser.errors import InputNotFound

_MSP_FACE = re.compile(r"^MSP-FACE_(\d+)_(\d+)$", re.IGNORECASE)


def prepare(root: Path) -> Corpus:
    """Read every video with an audio track under ``root`` into an unlabeled manifest."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputNotFound(f"audio-visual clip folder not found: {root}")
    videos, ignored = find_media(root, VIDEO_SUFFIXES)
    rows, skips = read_files(videos, _describe)
    return Corpus(name="avclips", root=root, classes=(), manifest=make_manifest(rows), skipped=make_skips(skips), ignored=ignored)


def _describe(path: Path) -> dict:
    fps, n_frames, has_audio = probe_video(path)
    if not has_audio:
        raise SkipFile("no audio track")
    info = audio_info(path)
    return {
        "speaker": speaker_of(path),
        "label": None,
        "label_index": -1,
        "duration": info.duration,
        "sample_rate": info.sample_rate,
        "video_path": str(path),
        "fps": fps,
        "n_frames": n_frames,
    }


def speaker_of(path: Path) -> str:
    """The source video id of an MSP-Face segment, else the file stem."""
    match = _MSP_FACE.match(path.stem)
    return match.group(1) if match else path.stem


def probe_video(path: Path) -> tuple[float, int, bool]:
    """(fps, frame count, has an audio track) from the container, without decoding.

    The frame count falls back to duration x fps where the container keeps no
    count (mkv, webm). Raises AudioError when the file does not open or has no
    video stream.
    """
    if path.stat().st_size == 0:
        raise AudioError("empty file", path)
    with open_container(path) as container:
        if not container.streams.video:
            raise AudioError("no video stream", path)
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else math.nan
        n_frames = int(stream.frames)
        if n_frames == 0 and math.isfinite(fps):
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / av.time_base
            n_frames = round(seconds * fps)
        return fps, n_frames, bool(container.streams.audio)
