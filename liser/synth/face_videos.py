"""A labeled face-video set over the 7 FERV39k classes: a stand-in for FERV39k (section 3.2).

The paper's video teacher (S2D) was trained on FERV39k, short 30 fps clips each labeled
with one of angry, disgust, fear, happy, neutral, sad, surprise. This module draws such
clips with :func:`liser.synth.face.render_clip` so the small DFER teacher
(:func:`liser.teachers.small_dfer.fit_small_dfer`) can be trained and tested offline.

Layout under ``out_dir``::

    videos/fv_0000.mp4 ...   silent H.264 videos, size x size at 30 fps, 1-2 s each
    labels.csv               clip_id, label (FERV39k class), person, intensity, n_frames

Frames are face crops, as FERV39k's are: the head is drawn ``ZOOM`` times larger than
in the synthetic unlabeled clips (``liser.synth.corpus``), so a frame here shows what
the box :data:`liser.constants.SYNTH_FACE_BOX` cuts out of one of those clips. Read
these videos with ``detector="prealigned"`` and the unlabeled clips with
``detector="prealigned", box=SYNTH_FACE_BOX``. (At the clips' own framing the expression
is a few pixels wide at 64 px and a small CNN barely learns it.)

People are drawn from their own random streams, so none is a speaker of the synthetic
MSP-Face set. Each person shows two different classes: with more, a clip-level split
lets a model guess a held-out clip's class from the person's *other* training clips,
which are by construction of other classes; :func:`liser.teachers.small_dfer.fit_small_dfer`
therefore holds out whole people (``person`` column).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from liser.constants import FERV39K_CLASSES, VIDEO_FPS
from liser.synth import face
from liser.synth.corpus import VIDEO_CODEC
from liser.synth.seeds import named_rng
from liser.constants import SYNTH_FACE_BOX
from liser.errors import DataError

CLIPS_PER_PERSON = 2
ZOOM = 1 / (SYNTH_FACE_BOX[2] - SYNTH_FACE_BOX[0])  # the clips' face box fills the frame


def generate_face_videos(
    out_dir: str | Path,
    n_clips: int = 140,
    seed: int = 0,
    size: int = 64,
    seconds: tuple[float, float] = (1.0, 2.0),
    intensity: tuple[float, float] = face.EXPRESSION_INTENSITY,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``n_clips`` labeled face videos and ``labels.csv``; return a summary.

    Class counts differ by at most one; clip lengths are uniform in ``seconds``;
    expression strength is uniform in ``intensity`` (0 = neutral face).
    """
    if size % 2:
        raise DataError(f"size must be even for yuv420p video, got {size}")
    if n_clips < 1:
        raise DataError(f"n_clips must be positive, got {n_clips}")
    start = time.perf_counter()
    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    rng = named_rng(seed, "face-videos-plan")
    n_people = max(1, -(-n_clips // CLIPS_PER_PERSON))
    # Slot j shows class j mod 7 and person j // CLIPS_PER_PERSON, so one person's clips
    # show consecutive, different classes; clips take the slots in random order.
    slot = rng.permutation(n_clips)
    labels = slot % len(FERV39K_CLASSES)
    people = slot // CLIPS_PER_PERSON
    styles = {p: _zoomed(face.draw_face_style(named_rng(seed, "face-videos-person", p))) for p in range(n_people)}
    rows = []
    for i in tqdm(range(n_clips), desc="face videos", unit="clip", disable=not progress):
        clip_id = f"fv_{i:04d}"
        clip_rng = named_rng(seed, "face-videos-clip", clip_id)
        n_frames = int(round(clip_rng.uniform(*seconds) * VIDEO_FPS))
        strength = float(clip_rng.uniform(*intensity))
        label = FERV39K_CLASSES[int(labels[i])]
        frames, _ = face.render_clip(styles[int(people[i])], label, strength, _mouth(clip_rng, n_frames), clip_rng, size, VIDEO_FPS)
        write_video(videos / f"{clip_id}.mp4", frames)
        person = f"p{int(people[i]):03d}"
        rows.append({"clip_id": clip_id, "label": label, "person": person, "intensity": round(strength, 3), "n_frames": n_frames})
    table = pd.DataFrame(rows)
    labels_csv = out / "labels.csv"
    table.to_csv(labels_csv, index=False)
    return {
        "out_dir": str(out),
        "videos_dir": str(videos),
        "labels_csv": str(labels_csv),
        "clips": n_clips,
        "people": n_people,
        "class_counts": table["label"].value_counts().reindex(FERV39K_CLASSES, fill_value=0).to_dict(),
        "size": size,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _zoomed(style: face.FaceStyle) -> face.FaceStyle:
    return dataclasses.replace(style, head_size=style.head_size * ZOOM)


def _mouth(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Mouth opening per frame: syllable-rate opening while talking, closed otherwise."""
    if rng.random() < 0.3:
        return np.zeros(n_frames)
    t = np.arange(n_frames) / VIDEO_FPS
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 2 * np.pi)), 0, 1)
    return np.clip(rng.uniform(0.4, 1.0) * syllables + rng.normal(0, 0.05, n_frames), 0, 1)


def write_video(path: Path, frames: np.ndarray, fps: int = VIDEO_FPS) -> Path:
    """Silent H.264 (or MPEG-4 Part 2) video of RGB uint8 frames [n, H, W, 3]."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(VIDEO_CODEC, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if VIDEO_CODEC == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "20", "threads": "1"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
